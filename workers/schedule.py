"""The beat schedule. Later features add their periodic tasks here."""

from __future__ import annotations

from datetime import timedelta

BEAT_SCHEDULE = {
    # Re-drive outbox rows whose publish was lost (crash between commit and publish, broker down).
    "sweep-outbox": {"task": "tanhui.sweep_outbox", "schedule": timedelta(seconds=30)},
    # Release reservations whose time is up (15 minutes for cards, days for bank transfers).
    "expire-reservations": {"task": "tanhui.expire_reservations", "schedule": timedelta(seconds=30)},
    # Re-read PaymentIntents no webhook has settled, so a lost webhook costs minutes, not money.
    "reconcile-payments": {"task": "tanhui.reconcile_payments", "schedule": timedelta(minutes=2)},
    # Paid orders whose retirement stalled (killed worker, lost message): ask again.
    "redrive-orders": {"task": "tanhui.redrive_orders", "schedule": timedelta(minutes=1)},
    # Forget form submission keys and API Idempotency-Keys older than IDEMPOTENCY_KEY_DAYS.
    "purge-idempotency-keys": {"task": "tanhui.purge_idempotency_keys", "schedule": timedelta(days=1)},
    # Events' neutralisation deadlines: reminders at 90/30/7 days while coverage < 100 %, then overdue.
    "neutrality-reminders": {"task": "tanhui.neutrality_reminders", "schedule": timedelta(hours=6)},
    # Cooperatives' statements: each period (STATEMENT_PERIOD) is closed once it has been over for an hour.
    "close-statements": {"task": "tanhui.close_statements", "schedule": timedelta(hours=1)},
}
