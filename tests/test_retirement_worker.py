"""Retirement and certificates on real Celery workers (Redis, PostgreSQL): exactly once, whatever happens."""

from __future__ import annotations

import re
import signal
import threading

import pytest
import sqlalchemy as sa

from marketplace.accounts.models import User
from marketplace.certificates import retirement
from marketplace.certificates.models import Certificate
from marketplace.core import outbox
from marketplace.core.outbox_models import DeadLetter
from marketplace.extensions import db
from marketplace.orders import service as orders
from marketplace.orders.models import Order
from marketplace.registry import ledger
from marketplace.registry.models import SerialRange
from tests.conftest import wait_for

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

def _paid_order(application, factory, tonnes: str = "175.402") -> int:
    """A bank-transfer order confirmed by the bureau, in ``application`` (its broker gets the task)."""
    listing = factory.listing(tonnes="500")
    buyer = factory.user("buyer")
    bureau = factory.user("bureau")
    from marketplace.core.quantities import parse_tonnes

    with application.app_context():
        order = orders.place_order(db.session, actor=db.session.get(User, buyer.id), units=parse_tonnes(tonnes),
                                   payment_method="bank_transfer", beneficiary="第十届“智汇丽水”人才科技峰会",
                                   retirement_reason="零碳会议", listing_id=listing.id)
        db.session.commit()
        orders.confirm_bank_transfer(db.session, order, actor=db.session.get(User, bureau.id), reference="B-1")
        db.session.commit()
        return order.id

def _tasks_ran(worker, task_ids) -> bool:
    """Whether the worker logged every one of these tasks as succeeded (Celery's "Task name[id] succeeded
    in …"); fails at once when it logged one of them as failed."""
    log = worker.log()
    outcomes = dict((task_id, outcome) for task_id, outcome in
                    re.findall(r"Task [\w.]+\[([0-9a-f-]+)\] (succeeded|raised)", log))
    failed = [task_id for task_id in task_ids if outcomes.get(task_id) == "raised"]
    assert not failed, f"tasks {failed} failed:\n{log[-3000:]}"
    return all(outcomes.get(task_id) == "succeeded" for task_id in task_ids)

def _state(application, order_id):
    with application.app_context():
        db.session.expire_all()
        order = db.session.get(Order, order_id)
        certificates = db.session.scalars(sa.select(Certificate).where(Certificate.order_id == order_id)).all()
        ranges = db.session.scalars(sa.select(SerialRange).where(SerialRange.ref == f"order:{order_id}")).all()
        report = ledger.check_invariants(db.session)
        return order.status, certificates, ranges, report

def test_a_paid_order_is_completed_with_one_certificate(redis_app, factory, celery_worker):
    order_id = _paid_order(redis_app, factory)
    wait_for(lambda: _state(redis_app, order_id)[0] == "completed", timeout=60)
    status, certificates, ranges, report = _state(redis_app, order_id)
    assert len(certificates) == 1 and certificates[0].quantity_units == 1_754_020
    assert sum(r.units for r in ranges) == 1_754_020
    assert report.ok, report.problems
    assert certificates[0].pdf_path

def test_duplicate_deliveries_and_concurrent_runs_retire_once(redis_app, factory, celery_worker):
    order_id = _paid_order(redis_app, factory)
    with redis_app.app_context():  # the same tasks delivered again, several times
        celery = redis_app.extensions["celery"]
        duplicates = [celery.send_task(name, kwargs={"order_id": order_id}).id
                      for _ in range(3) for name in (orders.RETIRE_TASK, retirement.CERTIFICATE_TASK)]

    errors = []

    def run_directly():  # and run concurrently with the worker, in this process
        try:
            with redis_app.app_context():
                retirement.retire_order(db.session, order_id)
                db.session.commit()
                retirement.generate_certificate(db.session, order_id)
        except Exception as exc:  # noqa: BLE001 — collected, and asserted on below
            errors.append(exc)

    threads = [threading.Thread(target=run_directly) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not [t for t in threads if t.is_alive()], "a direct run did not finish within 60 s"
    # Both steps are idempotent under concurrency (the order row lock, the unique certificate per order):
    # a concurrent run returns what the other did, it does not fail.
    assert errors == []
    wait_for(lambda: _state(redis_app, order_id)[0] == "completed", timeout=60)
    # The duplicate deliveries have all run (and succeeded) before the state is judged.
    wait_for(lambda: _tasks_ran(celery_worker, duplicates), timeout=60)
    status, certificates, ranges, report = _state(redis_app, order_id)
    assert status == "completed"
    assert len(certificates) == 1
    assert len(ranges) == 1 and ranges[0].units == 1_754_020
    assert report.ok, report.problems
    with redis_app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Certificate)) == 1
        assert db.session.scalars(sa.select(DeadLetter)).all() == []

def test_a_worker_killed_while_drawing_the_certificate_completes_exactly_once(redis_app, redis_url, factory,
                                                                            worker_factory):
    slow = worker_factory(redis_url, include=("tests.worker_faults",))  # pauses before drawing the PDF
    order_id = _paid_order(redis_app, factory)

    def issued_not_drawn():
        status, certificates, _ranges, _report = _state(redis_app, order_id)
        return status == "retiring" and certificates and not certificates[0].pdf_path

    wait_for(issued_not_drawn, timeout=60)
    slow.process.send_signal(signal.SIGKILL)
    slow.process.wait(10)
    assert _state(redis_app, order_id)[0] == "retiring"
    # A new worker; the lost delivery is re-driven (the beat task does this every minute).
    worker_factory(redis_url, ORDER_REDRIVE_AFTER_SECONDS=0)
    with redis_app.app_context():
        redis_app.extensions["celery"].send_task("tanhui.redrive_orders")
    wait_for(lambda: _state(redis_app, order_id)[0] == "completed", timeout=60)
    status, certificates, ranges, report = _state(redis_app, order_id)
    assert len(certificates) == 1 and certificates[0].pdf_path
    assert certificates[0].number.endswith("000001")  # no number was lost or used twice
    assert len(ranges) == 1 and report.ok

def test_a_redis_restart_loses_nothing(make_app, factory, worker_factory, private_redis):
    application = make_app(CELERY_BROKER_URL=private_redis.url, RATELIMIT_STORAGE_URI="memory://")
    worker_factory(private_redis.url)
    private_redis.stop()  # the broker is down while the bureau confirms the payment
    order_id = _paid_order(application, factory)
    with application.app_context():
        pending = db.session.scalar(sa.select(sa.func.count()).select_from(outbox.OutboxMessage)
                                    .where(outbox.OutboxMessage.published_at.is_(None)))
    assert pending >= 1
    assert _state(application, order_id)[0] == "paid"
    private_redis.start()
    with application.app_context():
        wait_for(lambda: outbox.sweep(0) >= 0 and _state(application, order_id)[0] == "completed", timeout=90,
                 interval=1)
    status, certificates, ranges, report = _state(application, order_id)
    assert len(certificates) == 1 and report.ok

def test_a_task_that_keeps_failing_becomes_a_dead_letter(redis_app, celery_worker):
    with redis_app.app_context():
        redis_app.extensions["celery"].send_task(orders.RETIRE_TASK, kwargs={"order_id": "not-a-number"})
    with redis_app.app_context():
        letter = wait_for(lambda: db.session.scalar(sa.select(DeadLetter)), timeout=60)
        assert letter.task_name == orders.RETIRE_TASK



def test_a_worker_killed_inside_the_retirement_transaction_retires_exactly_once(redis_app, redis_url, factory,
                                                                               worker_factory, tmp_path):
    """Fault matrix (d), docs/fault-matrix.md: the worker dies with the ledger's move reserved → retired
    written but not committed; the database rolls it back, the re-drive retires the order once."""
    mark = tmp_path / "in-retirement"
    slow = worker_factory(redis_url, include=("tests.worker_faults",), TANHUI_TEST_FAULT_POINT="in_retirement",
                          TANHUI_TEST_FAULT_MARK=str(mark))
    order_id = _paid_order(redis_app, factory)
    wait_for(mark.exists, timeout=60)
    slow.process.send_signal(signal.SIGKILL)
    slow.process.wait(10)
    status, certificates, ranges, report = _state(redis_app, order_id)
    # The kill rolled the open transaction back: still paid, nothing retired, and the ledger is whole.
    assert (status, certificates, ranges) == ("paid", [], [])
    assert report.ok, report.problems
    worker_factory(redis_url, ORDER_REDRIVE_AFTER_SECONDS=0)
    with redis_app.app_context():
        redis_app.extensions["celery"].send_task("tanhui.redrive_orders")
    wait_for(lambda: _state(redis_app, order_id)[0] == "completed", timeout=60)
    status, certificates, ranges, report = _state(redis_app, order_id)
    assert len(certificates) == 1 and certificates[0].pdf_path
    assert len(ranges) == 1 and ranges[0].units == 1_754_020
    assert report.ok, report.problems


def test_the_retirement_task_certifies_in_the_same_run_and_a_repeat_changes_nothing(redis_app, make_app, factory):
    """No queue hop between retirement and certificate: the retirement's run issues, draws and completes,
    asking only for the e-mail; run again (a redelivery), it finds everything done."""
    application = make_app(OUTBOX_PUBLISH_ON_COMMIT=False)  # run here, by hand: nothing goes to a worker
    order_id = _paid_order(application, factory)
    with application.app_context():
        number = retirement.retire_and_certify(db.session, order_id)
        asked = db.session.scalars(sa.select(outbox.OutboxMessage.task_name)
                                   .where(outbox.OutboxMessage.kwargs["order_id"].as_integer() == order_id)
                                   .order_by(outbox.OutboxMessage.id)).all()
        assert retirement.retire_and_certify(db.session, order_id) == "nothing to do (completed)"
        # the certificate is asked for through the outbox only when another run will draw it
        assert retirement.retire_order(db.session, order_id) == "nothing to do (completed)"
        db.session.rollback()
    status, certificates, ranges, report = _state(application, order_id)
    assert status == "completed" and [c.number for c in certificates] == [number]
    assert certificates[0].pdf_path and len(ranges) == 1 and report.ok, report.problems
    assert asked == [orders.RETIRE_TASK, retirement.NOTIFY_TASK]
