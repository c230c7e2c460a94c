"""E-mail to people: SMTP when MAIL_SERVER is set; otherwise each message is written to ``instance/mail/``
as an .eml file (development), so nothing is silently dropped."""

from __future__ import annotations

import logging
import smtplib
from email.message import EmailMessage
from pathlib import Path

from flask import current_app

from marketplace.core.db import utcnow

log = logging.getLogger(__name__)


def send(message: EmailMessage) -> None:
    config = current_app.config
    if config.get("MAIL_SERVER"):
        with smtplib.SMTP(config["MAIL_SERVER"], config["MAIL_PORT"], timeout=10) as smtp:
            smtp.send_message(message)
        return
    folder = Path(current_app.instance_path) / "mail"
    folder.mkdir(parents=True, exist_ok=True)
    name = f"{utcnow():%Y%m%dT%H%M%S%f}-{message['To'].split('@')[0]}.eml"
    (folder / name).write_bytes(bytes(message))
    log.info("mail to %s written to %s", message["To"], folder / name)
