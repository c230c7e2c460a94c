"""Migrations build exactly the schema the models describe (on SQLite and on PostgreSQL)."""

import json

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import upgrade

from marketplace.extensions import db
from tests.conftest import ON_POSTGRES, POSTGRES_ADMIN_URL, RUN_ID


@pytest.fixture
def empty_database_url(tmp_path):
    if not ON_POSTGRES:
        yield f"sqlite:///{tmp_path / 'migrated.sqlite'}"
        return
    admin = sa.create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"tanhui_migrate_{RUN_ID}"
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    yield sa.engine.make_url(POSTGRES_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def test_upgrading_an_empty_database_matches_the_models(make_app, empty_database_url):
    migrated = make_app(SQLALCHEMY_DATABASE_URI=empty_database_url)
    with migrated.app_context():
        upgrade()
        with db.engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={
                "compare_type": True,
                "include_object": lambda obj, name, type_, *_: not (type_ == "table" and name == "alembic_version"),
            })
            diff = compare_metadata(context, db.metadata)
        db.engine.dispose()
    assert diff == []


@pytest.mark.postgres
def test_migrated_postgres_has_the_ledger_guarantees(make_app, empty_database_url):
    migrated = make_app(SQLALCHEMY_DATABASE_URI=empty_database_url)
    with migrated.app_context():
        upgrade()
        with db.engine.connect() as conn:
            constraints = set(conn.scalars(sa.text("SELECT conname FROM pg_constraint WHERE contype = 'x'")))
            triggers = set(conn.scalars(sa.text("SELECT tgname FROM pg_trigger WHERE NOT tgisinternal")))
        db.engine.dispose()
    assert {"ex_serial_ranges_no_overlap", "ex_credit_batches_no_overlap"} <= constraints
    assert {"ledger_entries_append_only", "serial_ranges_append_only"} <= triggers


def test_form_submissions_move_to_idempotency_keys(make_app, empty_database_url):
    """0010 copies the web forms' keys of 0009 into idempotency_keys, and its downgrade copies them back."""
    from flask_migrate import downgrade

    migrated = make_app(SQLALCHEMY_DATABASE_URI=empty_database_url)
    with migrated.app_context():
        upgrade(revision="0009")
        with db.engine.begin() as conn:
            conn.execute(sa.text(
                "INSERT INTO organisations (kind, name, credit_code, created_at)"
                " VALUES ('seller', '官埔垟村股份经济合作社', '91331181MA2HXXXX0X', CURRENT_TIMESTAMP)"))
            conn.execute(sa.text(
                "INSERT INTO users (organisation_id, email, display_name, password_hash, locale, active, created_at)"
                " VALUES (1, 'a@example.org', '', 'x', 'zh_CN', true, CURRENT_TIMESTAMP)"))
            conn.execute(sa.text(
                "INSERT INTO form_submissions (user_id, key, endpoint, location, created_at)"
                " VALUES (1, :key, 'registry_sellers.new_project', '/sellers/projects/1', CURRENT_TIMESTAMP)"),
                {"key": "a" * 32})
        upgrade()
        with db.engine.connect() as conn:
            rows = conn.execute(sa.text("SELECT key, endpoint, location, fingerprint FROM idempotency_keys")).all()
            assert not sa.inspect(conn).has_table("form_submissions")
        assert [tuple(r) for r in rows] == [("a" * 32, "registry_sellers.new_project", "/sellers/projects/1", None)]
        downgrade(revision="0009")
        with db.engine.connect() as conn:
            assert conn.execute(sa.text("SELECT key FROM form_submissions")).scalars().all() == ["a" * 32]
        db.engine.dispose()


#: Notes as the services wrote them before 0011 → the code and parameters 0011 stores (None: kept as text).
OLD_NOTES = [
    ("bank_transfer", ("placed", {"payment_method": "bank_transfer"})),
    ("card pi_1 (webhook evt_2)", ("card_paid", {"intent": "pi_1", "via": "webhook", "event": "evt_2"})),
    ("card pi_1 (re-read)", ("card_paid", {"intent": "pi_1", "via": "reread"})),
    ("card pi_1 (pay page)", ("card_paid", {"intent": "pi_1", "via": "pay_page"})),
    ("card pi_1 (order page)", ("card_paid", {"intent": "pi_1", "via": "order_page"})),
    ("card pi_1 (paid while cancelling)", ("card_paid", {"intent": "pi_1", "via": "cancelling"})),
    ("card refund re_3", ("card_refunded", {"refund": "re_3"})),
    ("bank transfer ICBC 2026-1", ("bank_transfer", {"reference": "ICBC 2026-1"})),
    ("refund made: R-9", ("refund_made", {"reference": "R-9"})),
    ("payment after cancellation: card pi_1 (webhook evt_2)",
     ("payment_after_cancellation",
      {"payment": {"code": "card_paid", "params": {"intent": "pi_1", "via": "webhook", "event": "evt_2"}}})),
    ("late payment, units gone: late webhook",
     ("late_payment_units_gone", {"payment": {"code": "text", "params": {"text": "late webhook"}}})),
    ("reservation expired", ("reservation_expired", None)),
    ("retirement started", ("retirement_started", None)),
    ("TH-2026-000123", ("certificate_issued", {"number": "TH-2026-000123"})),
    ("材料齐全，人工备注", None),
    ("", None),
]


def test_order_notes_become_codes_and_parameters_and_back(make_app, empty_database_url):
    """0011 turns the English notes of order transitions into codes and parameters (an unknown note stays
    free text), and its downgrade writes the same English back."""
    from flask_migrate import downgrade

    migrated = make_app(SQLALCHEMY_DATABASE_URI=empty_database_url)
    with migrated.app_context():
        upgrade(revision="0010")
        with db.engine.begin() as conn:
            conn.execute(sa.text(
                "INSERT INTO organisations (kind, name, credit_code, created_at)"
                " VALUES ('buyer', '丽水市生态环境局', '11331100MB1234567X', CURRENT_TIMESTAMP)"))
            conn.execute(sa.text(
                "INSERT INTO users (organisation_id, email, display_name, password_hash, locale, active, created_at)"
                " VALUES (1, 'b@example.org', '', 'x', 'zh_CN', true, CURRENT_TIMESTAMP)"))
            conn.execute(sa.text(
                "INSERT INTO orders (buyer_organisation_id, created_by_id, quantity_units, amount_cny, beneficiary,"
                " retirement_reason, payment_method, status, refund_status, created_at, updated_at)"
                " VALUES (1, 1, 10000, 30.00, '甲', '测试', 'card', 'paid', 'none', CURRENT_TIMESTAMP,"
                " CURRENT_TIMESTAMP)"))
            for note, _expected in OLD_NOTES:
                conn.execute(sa.text(
                    "INSERT INTO order_transitions (order_id, from_status, to_status, note, created_at)"
                    " VALUES (1, 'pending_payment', 'paid', :note, CURRENT_TIMESTAMP)"), {"note": note})
        upgrade(revision="0011")
        query = sa.text("SELECT note, note_code, note_params FROM order_transitions ORDER BY id")
        with db.engine.connect() as conn:
            rows = conn.execute(query).all()
        converted = []
        for note, code, params in rows:
            params = json.loads(params) if isinstance(params, str) else params
            converted.append(note if code is None else (code, params) if note == "" else ("not emptied", note))
        assert converted == [old if expected is None else expected for old, expected in OLD_NOTES]
        downgrade(revision="0010")
        with db.engine.connect() as conn:
            assert conn.execute(sa.text("SELECT note FROM order_transitions ORDER BY id")).scalars().all() == [
                old for old, _expected in OLD_NOTES]
            assert "note_code" not in {c["name"] for c in sa.inspect(conn).get_columns("order_transitions")}
        db.engine.dispose()
