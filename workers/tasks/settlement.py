"""Settlement tasks: closing the cooperatives' ended statement periods (thin: the settlement services act)."""

from __future__ import annotations

from celery import shared_task

from marketplace.extensions import db
from marketplace.settlement import statements

TASK = "tanhui.close_statements"


@shared_task(name=TASK)
def close_statements() -> int:
    """Close every period (STATEMENT_PERIOD) that ended at least an hour ago; safe to repeat: a closed statement
    is never written again. The number of statements written."""
    written = statements.close_all_due(db.session)
    db.session.commit()
    return written
