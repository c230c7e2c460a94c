"""Statements per period: the STATEMENT_PERIOD setting (month or quarter, refused at start-up otherwise), closed
statements written once with their kind, start and end, the next starting where the last closed one ended
(a switch from months to quarters never rewrites or overlaps a month), opening = previous closing, and
`money check` proving the closings equal the journal."""

from __future__ import annotations

import itertools
from datetime import date, datetime

import pytest
import sqlalchemy as sa

from marketplace.extensions import db
from marketplace.settlement import journal, money_check, statements
from marketplace.settlement.models import MoneyEntry, StatementRecord
from tests.conftest import CsrfClient
from tests.factories import PASSWORD

ZONE = "Asia/Shanghai"
_refs = itertools.count(1)


def _at(year, month, day, hour=12) -> datetime:
    from zoneinfo import ZoneInfo

    return datetime(year, month, day, hour, tzinfo=ZoneInfo(ZONE))


def _move(session, organisation_id: int, when: datetime, fen: int, kind: str = "proceeds") -> None:
    """A sale's proceeds (or, ``payout``, money paid out) on the cooperative's balance at a given moment. The
    journal is append-only, so the moment is written with the entry (as the clock would have)."""
    n = next(_refs)
    seller = journal.seller(organisation_id)
    if kind == "proceeds":
        session.add(MoneyEntry(ref=f"test:{n}", kind="proceeds", debit_account=journal.BUYERS, credit_account=seller,
                               amount_fen=fen, seller_organisation_id=organisation_id, created_at=when))
    else:
        session.add(MoneyEntry(ref=f"test:{n}", kind="payout", debit_account=seller,
                               credit_account=journal.cooperative(organisation_id), amount_fen=fen,
                               seller_organisation_id=organisation_id, created_at=when))
    session.flush()


@pytest.fixture
def coop(session, factory):
    return factory.user("seller").organisation_id


def test_quarterly_statements_cover_calendar_quarters(session, coop):
    _move(session, coop, _at(2026, 1, 15), 10_000)
    _move(session, coop, _at(2026, 3, 31, 23), 5_000)  # Beijing time: still the first quarter
    _move(session, coop, _at(2026, 4, 5), 2_000)
    _move(session, coop, _at(2026, 5, 20), 12_000, kind="payout")
    written = statements.close_due(session, coop, now=_at(2026, 7, 1, 2), kind="quarter")
    assert [(r.period_kind, r.starts_on, r.ends_on) for r in written] == [
        ("quarter", date(2026, 1, 1), date(2026, 4, 1)), ("quarter", date(2026, 4, 1), date(2026, 7, 1))]
    first, second = written
    assert (first.opening_fen, first.sales_fen, first.closing_fen) == (0, 15_000, 15_000)
    assert (second.opening_fen, second.sales_fen, second.payouts_fen, second.closing_fen) == (15_000, 2_000, 12_000,
                                                                                               5_000)
    sheets = statements.statements_of(session, coop, now=_at(2026, 7, 1, 2), kind="quarter")
    assert [s.period for s in sheets] == ["2026-Q3", "2026-Q2", "2026-Q1"]
    assert not sheets[0].closed and sheets[1].closed
    assert money_check.check_invariants(session) == []
    # Repeating changes nothing.
    assert statements.close_due(session, coop, now=_at(2026, 7, 1, 3), kind="quarter") == []


def test_a_period_is_closed_only_an_hour_after_it_ended(session, coop):
    _move(session, coop, _at(2026, 1, 31, 23), 1_000)
    assert statements.close_due(session, coop, now=_at(2026, 2, 1, 0), kind="month") == []
    assert len(statements.close_due(session, coop, now=_at(2026, 2, 1, 1), kind="month")) == 1


def test_switching_from_months_to_quarters_never_rewrites_or_overlaps_a_closed_month(session, coop):
    _move(session, coop, _at(2026, 1, 10), 1_000)
    _move(session, coop, _at(2026, 2, 10), 2_000)
    _move(session, coop, _at(2026, 5, 10), 4_000)
    january, = statements.close_due(session, coop, now=_at(2026, 2, 15), kind="month")
    assert (january.period_kind, january.starts_on, january.ends_on, january.closing_fen) == (
        "month", date(2026, 1, 1), date(2026, 2, 1), 1_000)
    closed_at = january.closed_at
    written = statements.close_due(session, coop, now=_at(2026, 7, 2), kind="quarter")
    # The first quarter is short: it starts where January ended.
    assert [(r.period_kind, r.starts_on, r.ends_on) for r in written] == [
        ("quarter", date(2026, 2, 1), date(2026, 4, 1)), ("quarter", date(2026, 4, 1), date(2026, 7, 1))]
    short, second = written
    assert (short.opening_fen, short.closing_fen, second.opening_fen, second.closing_fen) == (1_000, 3_000, 3_000, 7_000)
    session.refresh(january)
    assert (january.period_kind, january.ends_on, january.closing_fen, january.closed_at) == (
        "month", date(2026, 2, 1), 1_000, closed_at)
    labels = [s.period for s in statements.statements_of(session, coop, now=_at(2026, 7, 2), kind="quarter")]
    assert labels == ["2026-Q3", "2026-Q2", "2026-02-01 – 2026-03-31", "2026-01"]
    # Back to months: they follow the last quarter.
    _move(session, coop, _at(2026, 7, 3), 500)
    july, = statements.close_due(session, coop, now=_at(2026, 8, 2), kind="month")
    assert (july.starts_on, july.ends_on, july.opening_fen, july.closing_fen) == (date(2026, 7, 1), date(2026, 8, 1),
                                                                                  7_000, 7_500)
    assert money_check.check_invariants(session) == []


def test_the_setting_decides_the_period(app, session, coop):
    _move(session, coop, _at(2026, 2, 10), 1_000)
    app.config["STATEMENT_PERIOD"] = "quarter"
    try:
        assert statements.close_all_due(session, now=_at(2026, 4, 2)) == 1
    finally:
        app.config["STATEMENT_PERIOD"] = "month"
    record = session.scalar(sa.select(StatementRecord).where(StatementRecord.organisation_id == coop))
    assert (record.period_kind, record.starts_on, record.ends_on) == ("quarter", date(2026, 1, 1), date(2026, 4, 1))
    # Months from now on: April is the next statement.
    assert [s.period for s in statements.statements_of(session, coop, now=_at(2026, 5, 2))][-2:] == ["2026-04",
                                                                                                      "2026-Q1"]


def test_money_check_finds_a_closed_statement_that_no_longer_equals_the_journal(session, coop):
    _move(session, coop, _at(2026, 1, 10), 1_000)
    _move(session, coop, _at(2026, 2, 10), 2_000)
    statements.close_due(session, coop, now=_at(2026, 3, 2), kind="month")
    assert money_check.check_invariants(session) == []
    session.execute(sa.update(StatementRecord).where(StatementRecord.starts_on == date(2026, 1, 1))
                    .values(sales_fen=1_100, closing_fen=1_100))
    problems = money_check.check_invariants(session)
    assert any("2026-01" in p and "the journal" in p for p in problems)
    assert any("2026-02" in p and "previous" in p for p in problems)
    # an entry written into a closed period: nothing more is closed over it
    from marketplace.core.errors import Conflict

    _move(session, coop, _at(2026, 2, 20), 300)
    assert any("2026-02" in p and "the journal" in p for p in money_check.check_invariants(session))
    with pytest.raises(Conflict):
        statements.close_due(session, coop, now=_at(2026, 4, 2), kind="month")


@pytest.mark.parametrize("value", ["week", "", "Month"])
def test_an_unknown_statement_period_stops_the_start_naming_the_setting(make_app, value):
    with pytest.raises(ValueError, match="STATEMENT_PERIOD"):
        make_app(STATEMENT_PERIOD=value)


def _as(app, user):
    form = CsrfClient(app.test_client())
    assert form.post_form("/login", {"email": user.email, "password": PASSWORD}).status_code == 302
    return form


def test_the_cooperative_and_the_desk_see_the_statements_with_their_period(app, factory):
    seller = factory.user("seller")
    operator = factory.user("operator")
    with app.app_context():
        _move(db.session, seller.organisation_id, _at(2026, 1, 10), 1_000)
        _move(db.session, seller.organisation_id, _at(2026, 4, 10), 2_000)
        statements.close_due(db.session, seller.organisation_id, now=_at(2026, 4, 1, 2), kind="quarter")
        db.session.commit()
    coop = _as(app, seller)
    money = coop.client.get("/sellers/money/").get_data(as_text=True)
    assert 'data-statement="2026-01-01"' in money and 'data-statement="2026-04-01"' in money
    page = coop.client.get("/sellers/money/statements/2026-01-01").get_data(as_text=True)
    assert 'data-kind="quarter"' in page and "2026-03-31" in page and 'data-field="closing">¥10.00' in page
    assert coop.client.get("/sellers/money/statements/2026-02-01").status_code == 404  # inside a quarter
    assert coop.client.get("/sellers/money/statements/2026-13").status_code == 404
    desk = _as(app, operator)
    listing = desk.client.get("/bureau/money/statements").get_data(as_text=True)
    assert f'id="statements-{seller.organisation_id}"' in listing
    shown = desk.client.get(f"/bureau/money/statements/{seller.organisation_id}/2026-01-01")
    assert shown.status_code == 200 and 'data-kind="quarter"' in shown.get_data(as_text=True)
    closed = desk.post_form("/bureau/money/statements", {}, action="/bureau/money/statements/close")
    assert closed.status_code == 302
    with app.app_context():
        # April up to now, month by month (the test's setting), after the closed quarter
        rows = db.session.scalars(sa.select(StatementRecord).where(
            StatementRecord.organisation_id == seller.organisation_id).order_by(StatementRecord.starts_on)).all()
        assert rows[0].period_kind == "quarter" and all(r.period_kind == "month" for r in rows[1:])
        assert rows[1].starts_on == date(2026, 4, 1)
        assert money_check.check_invariants(db.session) == []


def test_money_close_statements_closes_the_ended_periods_and_money_check_agrees(app, factory):
    seller = factory.user("seller")
    with app.app_context():
        _move(db.session, seller.organisation_id, _at(2026, 1, 10), 1_000)
        db.session.commit()
    runner = app.test_cli_runner()
    first = runner.invoke(args=["money", "close-statements"])
    assert first.exit_code == 0 and "month" in first.output
    with app.app_context():
        closed = db.session.scalar(sa.select(sa.func.count()).select_from(StatementRecord))
    assert closed >= 1  # January 2026 up to the last month that has ended
    again = runner.invoke(args=["money", "close-statements"])
    assert again.exit_code == 0 and "statements closed now: 0" in again.output
    assert runner.invoke(args=["money", "check"]).exit_code == 0


def test_beat_closes_the_ended_periods_hourly_and_a_repeat_writes_nothing(app, factory):
    from workers.schedule import BEAT_SCHEDULE
    from workers.tasks.settlement import close_statements

    assert BEAT_SCHEDULE["close-statements"]["task"] == "tanhui.close_statements"
    seller = factory.user("seller")
    with app.app_context():
        _move(db.session, seller.organisation_id, _at(2026, 1, 10), 1_000)
        db.session.commit()
        assert close_statements.apply().get() >= 1  # the task's body, run here; beat runs it every hour
        closed = db.session.scalar(sa.select(sa.func.count()).select_from(StatementRecord))
        assert close_statements.apply().get() == 0
        assert db.session.scalar(sa.select(sa.func.count()).select_from(StatementRecord)) == closed
        assert money_check.check_invariants(db.session) == []


def test_a_refused_setting_leaves_the_running_application_whole(make_app, client):
    """Settings are checked before anything is registered with the shared extensions: an application refused
    for its statement period must not leave the API document (one per process) half built."""
    with pytest.raises(ValueError, match="STATEMENT_PERIOD"):
        make_app(STATEMENT_PERIOD="week")
    paths = client.get("/api/v1/openapi.json").get_json()["paths"]
    assert {"/api/v1/public/villages", "/api/v1/stats/summary", "/api/v1/orders"} <= set(paths)
