"""Work is enqueued only by a committed transaction, and nothing committed is ever lost."""

import pytest
import sqlalchemy as sa

from marketplace.core import outbox, probes
from marketplace.core.outbox_models import OutboxMessage
from marketplace.core.probe_models import QueueProbe
from marketplace.extensions import db
from tests.conftest import wait_for


def _rows(app):
    with app.app_context():
        return db.session.scalars(sa.select(OutboxMessage).order_by(OutboxMessage.id)).all()


def test_a_rolled_back_transaction_enqueues_nothing(app):
    with app.app_context():
        probes.request(db.session, "rolled-back")
        db.session.rollback()
    assert _rows(app) == []


def test_a_committed_transaction_is_published_right_after_commit(app):
    with app.app_context():
        probes.request(db.session, "committed")
        db.session.commit()
    [row] = _rows(app)
    assert row.published_at is not None and row.attempts == 1


def test_a_broker_outage_leaves_the_row_for_the_sweeper(make_app):
    broken = make_app(CELERY_BROKER_URL="redis://127.0.0.1:1/0")  # nothing listens on port 1
    broken.extensions["celery"].conf.broker_connection_retry = False
    broken.extensions["celery"].conf.broker_connection_max_retries = 0
    broken.extensions["celery"].conf.broker_transport_options = {"max_retries": 0}
    with broken.app_context():
        probes.request(db.session, "outage")
        db.session.commit()  # the change commits even though the broker is down
        row = db.session.scalars(sa.select(OutboxMessage)).one()
        assert row.published_at is None and row.attempts == 1 and row.last_error


def test_the_sweeper_publishes_what_the_relay_missed(make_app, app):
    crashed = make_app(OUTBOX_PUBLISH_ON_COMMIT=False)  # as if the process died right after commit
    with crashed.app_context():
        probes.request(db.session, "missed")
        db.session.commit()
    assert _rows(app)[0].published_at is None
    with app.app_context():
        assert outbox.sweep(older_than_seconds=3600) == 0  # too young to be swept yet
        assert outbox.sweep(older_than_seconds=0) == 1
        assert outbox.sweep(older_than_seconds=0) == 0  # published once
    assert _rows(app)[0].published_at is not None


@pytest.mark.redis
def test_a_real_worker_on_redis_runs_the_task_only_after_commit(redis_app, celery_worker):
    with redis_app.app_context():
        probes.request(db.session, "never")
        db.session.rollback()
        probes.request(db.session, "after-commit")
        db.session.commit()

    def ran():
        with redis_app.app_context():
            return db.session.scalar(sa.select(QueueProbe).where(QueueProbe.key == "after-commit"))

    probe = wait_for(ran, timeout=30)
    assert probe.runs == 1
    with redis_app.app_context():
        assert db.session.scalar(sa.select(QueueProbe).where(QueueProbe.key == "never")) is None


@pytest.mark.redis
def test_a_crash_between_commit_and_publish_is_recovered_by_the_sweeper(make_app, redis_url, celery_worker):
    crashed = make_app(CELERY_BROKER_URL=redis_url, OUTBOX_PUBLISH_ON_COMMIT=False)
    with crashed.app_context():
        probes.request(db.session, "recovered")
        db.session.commit()
    healthy = make_app(CELERY_BROKER_URL=redis_url)
    with healthy.app_context():
        assert db.session.scalar(sa.select(QueueProbe)) is None
        assert outbox.sweep(older_than_seconds=0) == 1

    def ran():
        with healthy.app_context():
            return db.session.scalar(sa.select(QueueProbe).where(QueueProbe.key == "recovered"))

    assert wait_for(ran, timeout=30).runs == 1
