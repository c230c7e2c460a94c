"""The one upload limit (UPLOAD_MAX_MB): what forms say, what services check and what a refused request says."""

from __future__ import annotations

from flask import current_app


def upload_limit_mb() -> int:
    """The limit in MB, as forms and messages say it."""
    return int(current_app.config["UPLOAD_MAX_MB"])


def upload_limit_bytes() -> int:
    return upload_limit_mb() * 1024 * 1024
