"""E-mail to people: the certificate is ready. SMTP when MAIL_SERVER is set; otherwise each message is
written to ``instance/mail/`` as an .eml file (development), so nothing is silently dropped."""

from __future__ import annotations

import logging
import smtplib
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path

import sqlalchemy as sa
import sqlalchemy.orm as so
from flask import current_app, render_template
from flask_babel import force_locale

from marketplace.accounts.models import User
from marketplace.certificates.retirement import certificate_number_for
from marketplace.core.db import utcnow
from marketplace.core.i18n import platform_zone, zone_label
from marketplace.orders.models import Order

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


def certificate_ready(session: so.Session, order_id: int) -> int:
    """Tell the buyer's users, once per order. Returns how many messages were sent.

    COMMITS, unlike other services: an e-mail cannot be rolled back, so the claim on the order must be
    durable before the first message leaves (two runs of the task must not both send), and given back in
    its own transaction if sending fails. Only the task calls it."""
    # Claim the order first, so that of two runs of the task (a redelivery, the sweeper) only one sends;
    # if sending fails the claim is given back and the retried task sends again.
    claimed_at = utcnow()
    claim = session.execute(sa.update(Order).where(Order.id == order_id, Order.status == "completed",
                                                   Order.notified_at.is_(None))
                            .values(notified_at=claimed_at), execution_options={"synchronize_session": False})
    session.commit()
    if claim.rowcount != 1:
        return 0
    order = session.get(Order, order_id)
    try:
        return _send_certificate_ready(session, order)
    except Exception:
        session.rollback()
        session.execute(sa.update(Order).where(Order.id == order_id, Order.notified_at == claimed_at)
                        .values(notified_at=None), execution_options={"synchronize_session": False})
        session.commit()
        raise


def _send_certificate_ready(session: so.Session, order: Order) -> int:
    number = certificate_number_for(session=session, order_id=order.id)
    users = session.scalars(sa.select(User).where(User.organisation_id == order.buyer_organisation_id,
                                                  User.active.is_(True))).all()
    base = current_app.config["PUBLIC_BASE_URL"].rstrip("/")
    for user in users:
        with force_locale(user.locale):
            message = EmailMessage()
            message["From"] = current_app.config["MAIL_DEFAULT_SENDER"]
            message["To"] = user.email
            # Mail programs show the Date header in the reader's zone; given in the platform's, it also
            # reads right where it is shown as sent.
            message["Date"] = format_datetime(utcnow().astimezone(platform_zone()))
            message["Subject"] = render_template("certificates/email_ready_subject.txt", number=number).strip()
            message.set_content(render_template("certificates/email_ready.txt", user=user, order=order, number=number,
                                                order_url=f"{base}/buyers/orders/{order.id}",
                                                verify_url=f"{base}/verify/{number}", zone_label=zone_label))
        send(message)
    return len(users)
