"""Deadline reminders (beat, daily): the organiser is told at 90, 30 and 7 days before the deadline while
coverage is below 100 %; once the deadline has passed short of 100 %, the plan is marked overdue for the
bureau. Each reminder is recorded once per plan and threshold (a unique constraint), so a repeated or
concurrent run sends nothing twice."""

from __future__ import annotations

from email.message import EmailMessage

import sqlalchemy as sa
import sqlalchemy.orm as so
from flask import current_app, render_template
from flask_babel import force_locale

from marketplace.accounts.models import User
from marketplace.certificates.notifications import send
from marketplace.core.db import insert, utcnow
from marketplace.neutrality import coverage as coverage_of
from marketplace.neutrality.models import REMINDER_DAYS, Declaration, NeutralityPlan, NeutralityReminder
from marketplace.neutrality.service import today

TASK = "tanhui.neutrality_reminders"


def due(plan: NeutralityPlan, on) -> int | None:
    """The threshold (90, 30, 7; 0 = overdue) the plan has reached on this day, or None."""
    days_left = (plan.deadline - on).days
    if days_left < 0:
        return 0
    reached = [days for days in REMINDER_DAYS if days_left <= days]
    return min(reached) if reached else None


def _claim(session: so.Session, plan_id: int, days_before: int) -> bool:
    """Record the reminder; False if it was recorded before (by this run's predecessor or a concurrent one)."""
    stmt = (insert(session, NeutralityReminder).values(plan_id=plan_id, days_before=days_before, recipients=0,
                                                       sent_at=utcnow())
            .on_conflict_do_nothing(index_elements=["plan_id", "days_before"]).returning(NeutralityReminder.id))
    return session.execute(stmt).scalar_one_or_none() is not None


def _tell_organiser(session: so.Session, plan: NeutralityPlan, days_before: int, cover) -> int:
    users = session.scalars(sa.select(User).where(User.organisation_id == plan.organisation_id,
                                                  User.active.is_(True))).all()
    base = current_app.config["PUBLIC_BASE_URL"].rstrip("/")
    for user in users:
        with force_locale(user.locale):
            message = EmailMessage()
            message["From"] = current_app.config["MAIL_DEFAULT_SENDER"]
            message["To"] = user.email
            message["Subject"] = render_template("neutrality/email_reminder_subject.txt", plan=plan,
                                                 days=days_before).strip()
            message.set_content(render_template(
                "neutrality/email_reminder.txt", plan=plan, days=days_before, cover=cover,
                url=f"{base}/buyers/events/{plan.event_id}/neutrality"))
        send(message)
    return len(users)


def run(session: so.Session, on=None) -> dict[str, int]:
    """One pass over the plans not yet declared: remind, or mark overdue. COMMITS per plan (an e-mail
    cannot be rolled back, so its record is durable first); only the beat task and tests call it."""
    on = on or today()
    declared = sa.select(Declaration.plan_id)
    plans = session.scalars(sa.select(NeutralityPlan).where(NeutralityPlan.id.not_in(declared))
                            .options(so.joinedload(NeutralityPlan.event)).order_by(NeutralityPlan.id)).all()
    counts = {"reminded": 0, "overdue": 0}
    for plan in plans:
        threshold = due(plan, on)
        if threshold is None:
            continue
        cover = coverage_of.of_plan(session, plan)
        if cover.complete:
            continue
        if not _claim(session, plan.id, threshold):
            session.rollback()
            continue
        if threshold == 0:
            session.execute(sa.update(NeutralityPlan).where(NeutralityPlan.id == plan.id,
                                                            NeutralityPlan.overdue_at.is_(None))
                            .values(overdue_at=utcnow()), execution_options={"synchronize_session": False})
            session.commit()
            counts["overdue"] += 1
            continue
        session.commit()
        sent = _tell_organiser(session, plan, threshold, cover)
        session.execute(sa.update(NeutralityReminder).where(NeutralityReminder.plan_id == plan.id,
                                                            NeutralityReminder.days_before == threshold)
                        .values(recipients=sent))
        session.commit()
        counts["reminded"] += 1
    return counts
