"""Migrations build exactly the schema the models describe (on SQLite and on PostgreSQL)."""

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


def _refusal_of_a_serial_range_update(conn) -> str:
    """The error an UPDATE of serial_ranges gets (the row is written with triggers and foreign keys off)."""
    conn.execute(sa.text("SET session_replication_role = replica"))
    conn.execute(sa.text("INSERT INTO serial_ranges (batch_id, start, \"end\", kind, ref, created_at)"
                         " VALUES (1, 1, 2, 'retirement', 'order:1', CURRENT_TIMESTAMP)"))
    conn.execute(sa.text("SET session_replication_role = origin"))
    try:
        with pytest.raises(sa.exc.DBAPIError) as refused:
            conn.execute(sa.text("UPDATE serial_ranges SET \"end\" = 3"))
    finally:
        conn.rollback()
    return str(refused.value.orig)


@pytest.mark.postgres
def test_the_append_only_refusal_names_its_table_from_0011(make_app, empty_database_url):
    from flask_migrate import downgrade

    migrated = make_app(SQLALCHEMY_DATABASE_URI=empty_database_url)
    with migrated.app_context():
        upgrade()
        with db.engine.connect() as conn:
            assert "serial_ranges is append-only (UPDATE refused)" in _refusal_of_a_serial_range_update(conn)
        downgrade(revision="0010")
        with db.engine.connect() as conn:
            assert "ledger_entries is append-only (UPDATE refused)" in _refusal_of_a_serial_range_update(conn)
        db.engine.dispose()


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
