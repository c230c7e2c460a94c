"""The beat schedule. Later features add their periodic tasks here."""

from __future__ import annotations

from datetime import timedelta

BEAT_SCHEDULE = {
    # Re-drive outbox rows whose publish was lost (crash between commit and publish, broker down).
    "sweep-outbox": {"task": "tanhui.sweep_outbox", "schedule": timedelta(seconds=30)},
}
