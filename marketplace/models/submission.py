"""Form submissions: a form sent twice (a double click, a resend after a timeout) acts once."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
import sqlalchemy.orm as so

from marketplace.extensions import db
from marketplace.models.base import UTCDateTime, utcnow


class FormSubmission(db.Model):
    """One row per form that changed something: the random key the page carried, per user, and where the
    first submission led, so that the same form sent again is answered with that page instead of acting
    again. Written in the same transaction as the change it guards (see marketplace.web.once)."""

    __tablename__ = "form_submissions"
    __table_args__ = (sa.UniqueConstraint("user_id", "key", name="uq_form_submissions_user_key"),)

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    user_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("users.id"))
    #: the hidden submission_key of the form (32 hex characters, made when the page was drawn)
    key: so.Mapped[str] = so.mapped_column(sa.String(32))
    #: the view it was sent to
    endpoint: so.Mapped[str] = so.mapped_column(sa.String(100))
    #: the page the first submission redirected to (set once the change is done)
    location: so.Mapped[str | None] = so.mapped_column(sa.String(500))
    created_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow)
