"""Migrations build exactly the schema the models describe (on SQLite and on PostgreSQL), every revision
goes down and up again, and no migration imports the application."""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask_migrate import downgrade, upgrade

from marketplace.extensions import db
from tests.conftest import ROOT

MIGRATIONS = ROOT / "migrations"


# --- what a database holds, by definition --------------------------------------------------------

def _squash(sql: str) -> str:
    """SQL text without layout: one space between tokens, none inside parentheses, no quotes on names."""
    sql = re.sub(r"\s+", " ", sql).strip()
    sql = re.sub(r"\(\s+", "(", sql)
    sql = re.sub(r"\s+\)", ")", sql)
    return sql.replace('"', "")


def _check_clauses(create_table_sql: str) -> list[str]:
    """The expressions of the CHECK constraints in SQLite's CREATE TABLE text (parentheses balanced)."""
    clauses = []
    for match in re.finditer(r"\bCHECK\s*\(", create_table_sql, flags=re.IGNORECASE):
        depth, start = 1, match.end()
        for position in range(start, len(create_table_sql)):
            char = create_table_sql[position]
            depth += {"(": 1, ")": -1}.get(char, 0)
            if depth == 0:
                clauses.append(_squash(create_table_sql[start:position]))
                break
    return sorted(clauses)


def _describe_sqlite(conn) -> dict:
    tables = conn.execute(sa.text(
        "SELECT name, sql FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        " AND name <> 'alembic_version' ORDER BY name")).all()
    schema = {}
    for name, sql in tables:
        columns = {row.name: (row.type.upper(), bool(row.notnull), row.dflt_value, row.pk)
                   for row in conn.execute(sa.text(f'PRAGMA table_info("{name}")'))}
        foreign_keys = sorted((row.table, row._mapping["from"], row.to, row.on_delete)
                              for row in conn.execute(sa.text(f'PRAGMA foreign_key_list("{name}")')))
        indexes = []
        for index in conn.execute(sa.text(f'PRAGMA index_list("{name}")')):
            index_columns = [row.name for row in conn.execute(sa.text(f'PRAGMA index_info("{index.name}")'))]
            where = conn.scalar(sa.text("SELECT sql FROM sqlite_master WHERE type = 'index' AND name = :n"),
                                {"n": index.name})
            where = _squash(where.partition(" WHERE ")[2]) if where and " WHERE " in where else None
            # An automatic index (a UNIQUE constraint) is named by SQLite, after its table and position.
            label = None if index.name.startswith("sqlite_autoindex_") else index.name
            indexes.append((label, tuple(index_columns), bool(index.unique), index.origin, where))
        schema[name] = {"columns": columns, "checks": _check_clauses(sql), "foreign_keys": foreign_keys,
                        "indexes": sorted(indexes, key=repr)}
    triggers = sorted(_squash(sql) for (sql,) in conn.execute(
        sa.text("SELECT sql FROM sqlite_master WHERE type = 'trigger'")))
    return {"tables": schema, "triggers": triggers}


def _describe_postgres(conn) -> dict:
    public = "JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = 'public'"
    tables = sorted(conn.scalars(sa.text(
        f"SELECT c.relname FROM pg_class c {public} WHERE c.relkind IN ('r', 'p') AND c.relname <> 'alembic_version'")))
    schema = {name: {"columns": {}, "constraints": [], "indexes": [], "triggers": []} for name in tables}
    for table, column, type_, not_null, default, identity in conn.execute(sa.text(
            f"SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,"
            f" pg_get_expr(d.adbin, d.adrelid), a.attidentity"
            f" FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid {public}"
            f" LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum"
            f" WHERE c.relkind IN ('r', 'p') AND a.attnum > 0 AND NOT a.attisdropped")):
        if table in schema:
            schema[table]["columns"][column] = (type_, not_null, default, identity)
    # Every constraint by its definition (CHECK, EXCLUDE, UNIQUE, FOREIGN KEY, PRIMARY KEY), with its name
    # beside it: a later migration drops constraints by name.
    for table, kind, definition, name in conn.execute(sa.text(
            f"SELECT c.relname, con.contype, pg_get_constraintdef(con.oid), con.conname"
            f" FROM pg_constraint con JOIN pg_class c ON c.oid = con.conrelid {public}")):
        if table in schema:
            schema[table]["constraints"].append((kind, definition, name))
    for table, definition in conn.execute(sa.text(
            "SELECT tablename, indexdef FROM pg_indexes WHERE schemaname = 'public'")):
        if table in schema:
            schema[table]["indexes"].append(definition)
    for table, definition in conn.execute(sa.text(
            f"SELECT c.relname, pg_get_triggerdef(t.oid) FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid"
            f" {public} WHERE NOT t.tgisinternal")):
        schema[table]["triggers"].append(definition)
    for entry in schema.values():
        for key in ("constraints", "indexes", "triggers"):
            entry[key].sort()
    # Functions of our own (not an extension's), by their whole definition: a trigger's body lives here.
    functions = dict(conn.execute(sa.text(
        "SELECT p.oid::regprocedure::text, pg_get_functiondef(p.oid) FROM pg_proc p"
        " JOIN pg_namespace n ON n.oid = p.pronamespace AND n.nspname = 'public'"
        " WHERE NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass"
        " AND d.objid = p.oid AND d.deptype = 'e')")).all())
    extensions = sorted(conn.scalars(sa.text("SELECT extname FROM pg_extension WHERE extname <> 'plpgsql'")))
    return {"tables": schema, "functions": functions, "extensions": extensions}


def describe(engine) -> dict:
    with engine.connect() as conn:
        return _describe_postgres(conn) if conn.dialect.name == "postgresql" else _describe_sqlite(conn)


def _differences(left: dict, right: dict, path: str = "") -> list[str]:
    """Readable differences between two descriptions (what a failure shows)."""
    if isinstance(left, dict) and isinstance(right, dict):
        found = []
        for key in sorted(left.keys() | right.keys(), key=str):
            if key not in right:
                found.append(f"{path}/{key}: only on the left: {left[key]!r}")
            elif key not in left:
                found.append(f"{path}/{key}: only on the right: {right[key]!r}")
            else:
                found.extend(_differences(left[key], right[key], f"{path}/{key}"))
        return found
    if isinstance(left, list) and isinstance(right, list) and left != right:
        only_left = [item for item in left if item not in right]
        only_right = [item for item in right if item not in left]
        return [f"{path}: only on the left {only_left!r}, only on the right {only_right!r}"]
    return [] if left == right else [f"{path}: {left!r} != {right!r}"]


# --- migrations stand alone ----------------------------------------------------------------------

def test_no_migration_imports_the_application():
    """A revision is history: it freezes what it needs (see 0002's PG_LEDGER_DDL), so that later changes to
    the models cannot change what an old revision does."""
    offenders = []
    for path in sorted((MIGRATIONS / "versions").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            else:
                continue
            offenders += [f"{path.name}:{node.lineno} imports {name}" for name in names
                          if name.split(".")[0] in ("marketplace", "workers", "tests")]
    assert offenders == []


def test_the_application_alone_registers_every_table_the_migrations_create(make_app, sqlite_database):
    """The web application alone (no worker code, no test imports) knows every table, so that create_all
    builds them all and ``flask db migrate`` run from it does not propose to drop one."""
    program = ("import json; from marketplace import create_app; from marketplace.extensions import db;"
               " create_app({'TESTING': True, 'SQLALCHEMY_DATABASE_URI': 'sqlite://', 'SECRET_KEY': 'x'});"
               " print(json.dumps(sorted(db.metadata.tables)))")
    result = subprocess.run([sys.executable, "-c", program], cwd=ROOT, capture_output=True, text=True,  # noqa: S603
                            check=True)
    registered = set(json.loads(result.stdout.strip().splitlines()[-1]))
    migrated = make_app(SQLALCHEMY_DATABASE_URI=sqlite_database())
    with migrated.app_context():
        upgrade()
        migrated_tables = set(describe(db.engine)["tables"])
        db.engine.dispose()
    assert migrated_tables - registered == set(), "tables the application registers only after another import"
    assert registered - migrated_tables == set(), "tables no migration creates"


# --- up, down and up again -----------------------------------------------------------------------

def _revisions() -> list[str]:
    """Every revision, base first."""
    return [script.revision for script in reversed(list(ScriptDirectory(str(MIGRATIONS)).walk_revisions()))]


def _current_revision(engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def _walk_down_and_up(make_app, url: str) -> None:
    migrated = make_app(SQLALCHEMY_DATABASE_URI=url)
    revisions = _revisions()
    assert len(revisions) >= 2
    with migrated.app_context():
        on_the_way_up = {None: describe(db.engine)}
        for revision in revisions:
            upgrade(revision="+1")
            assert _current_revision(db.engine) == revision
            on_the_way_up[revision] = describe(db.engine)
        for below in [None, *revisions[:-1]][::-1]:
            downgrade(revision="-1")
            assert _current_revision(db.engine) == below
            described = describe(db.engine)
            if "extensions" in described and "btree_gist" not in on_the_way_up[below]["extensions"]:
                # 0002 creates btree_gist only IF NOT EXISTS: it cannot know it was the one, so its downgrade
                # leaves it (another schema of the database may use it).
                described["extensions"].remove("btree_gist")
            differences = _differences(described, on_the_way_up[below])
            assert not differences, f"the downgrade to {below} left:\n" + "\n".join(differences)
        upgrade()
        assert _current_revision(db.engine) == revisions[-1]
        differences = _differences(describe(db.engine), on_the_way_up[revisions[-1]])
        assert not differences, "up again:\n" + "\n".join(differences)
        db.engine.dispose()


def test_every_revision_goes_down_to_base_and_up_again_on_sqlite(make_app, sqlite_database):
    _walk_down_and_up(make_app, sqlite_database())


@pytest.mark.postgres
def test_every_revision_goes_down_to_base_and_up_again_on_postgres(make_app, postgres_database):
    _walk_down_and_up(make_app, postgres_database())


# --- the migrated schema is the models' schema ---------------------------------------------------

def _migrated_and_created(make_app, new_database) -> tuple[dict, dict]:
    """The description of a database built by the migrations, and of one built by create_all (with the DDL
    the models attach to it: PostgreSQL's exclusion constraints, triggers and their functions)."""
    migrated = make_app(SQLALCHEMY_DATABASE_URI=new_database())
    with migrated.app_context():
        upgrade()
        from_migrations = describe(db.engine)
        db.engine.dispose()
    created = make_app(SQLALCHEMY_DATABASE_URI=new_database())
    with created.app_context():
        db.create_all()
        from_models = describe(db.engine)
        db.engine.dispose()
    return from_migrations, from_models


def test_migrated_sqlite_matches_the_models_by_definition(make_app, sqlite_database):
    from_migrations, from_models = _migrated_and_created(make_app, sqlite_database)
    differences = _differences(from_migrations, from_models)
    assert not differences, "migrations (left) and models (right) differ:\n" + "\n".join(differences)
    # The comparison saw the constraints at all (two descriptions without them would also be equal).
    assert "serial_end - serial_start = quantity_units" in from_migrations["tables"]["credit_batches"]["checks"]


@pytest.mark.postgres
def test_migrated_postgres_matches_the_models_by_definition(make_app, postgres_database):
    from_migrations, from_models = _migrated_and_created(make_app, postgres_database)
    differences = _differences(from_migrations, from_models)
    assert not differences, "migrations (left) and models (right) differ:\n" + "\n".join(differences)
    # The guarantees are there at all (a description of two empty schemas would also be equal).
    tables = from_migrations["tables"]
    assert any(kind == "x" for kind, _d, _n in tables["serial_ranges"]["constraints"])
    assert any(kind == "x" for kind, _d, _n in tables["credit_batches"]["constraints"])
    assert tables["ledger_entries"]["triggers"] and tables["serial_ranges"]["triggers"]
    assert tables["emission_factors"]["triggers"]
    assert "tanhui_append_only()" in from_migrations["functions"]


# --- the earlier checks --------------------------------------------------------------------------

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
def test_migrated_postgres_has_the_ledger_guarantees(make_app, postgres_database):
    migrated = make_app(SQLALCHEMY_DATABASE_URI=postgres_database())
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
def test_the_append_only_refusal_names_its_table_from_0012(make_app, empty_database_url):
    migrated = make_app(SQLALCHEMY_DATABASE_URI=empty_database_url)
    with migrated.app_context():
        upgrade()
        with db.engine.connect() as conn:
            assert "serial_ranges is append-only (UPDATE refused)" in _refusal_of_a_serial_range_update(conn)
        downgrade(revision="0011")
        with db.engine.connect() as conn:
            assert "ledger_entries is append-only (UPDATE refused)" in _refusal_of_a_serial_range_update(conn)
        db.engine.dispose()


def test_form_submissions_move_to_idempotency_keys(make_app, empty_database_url):
    """0010 copies the web forms' keys of 0009 into idempotency_keys, and its downgrade copies them back."""
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


def test_0021_gives_lines_their_source_and_plans_their_versions_by_source(make_app, empty_database_url):
    """0021 names each existing line's source from its factor code (else the category's first), fills a plan's
    versions by source where its lines still add up to them, adds coach travel to old boundaries, and goes
    back down."""
    migrated = make_app(SQLALCHEMY_DATABASE_URI=empty_database_url)
    with migrated.app_context():
        upgrade(revision="0020")
        with db.engine.begin() as conn:
            conn.execute(sa.text(
                "INSERT INTO organisations (kind, name, credit_code, created_at)"
                " VALUES ('buyer', '丽水市人才办', '11331100MB1234567X', CURRENT_TIMESTAMP)"))
            conn.execute(sa.text(
                "INSERT INTO users (organisation_id, email, display_name, password_hash, locale, active, created_at)"
                " VALUES (1, 'b@example.org', '', 'x', 'zh_CN', true, CURRENT_TIMESTAMP)"))
            for code, category in [("transport.hsr", "transport"), ("transport.coach", "transport"),
                                   ("venue.grid_east_2023", "venue"), ("venue.diesel_generator", "venue"),
                                   ("transport.bike_share", "transport")]:
                conn.execute(sa.text(
                    "INSERT INTO emission_factors (code, version, category, name_zh, name_en, unit, kgco2e_per_unit,"
                    " source, year, created_at) VALUES (:code, 1, :category, 'x', 'x', 'kWh', 1, 's', 2023,"
                    " CURRENT_TIMESTAMP)"), {"code": code, "category": category})
            for name in ("峰会", "论坛"):
                conn.execute(sa.text(
                    "INSERT INTO events (organisation_id, name, starts_on, ends_on, location, organiser, boundary,"
                    " created_at) VALUES (1, :name, '2026-10-30', '2026-11-01', '丽水', '', '', CURRENT_TIMESTAMP)"),
                    {"name": name})
            for event_id, factor_id, category, units in [(1, 1, "transport", 100), (1, 2, "transport", 20),
                                                         (1, 3, "venue", 30), (1, 4, "venue", 5),
                                                         (2, 5, "transport", 7), (2, 3, "venue", 9)]:
                conn.execute(sa.text(
                    "INSERT INTO activity_lines (event_id, category, factor_id, quantity, description,"
                    " emissions_units, created_at) VALUES (:e, :c, :f, 1, '', :u, CURRENT_TIMESTAMP)"),
                    {"e": event_id, "c": category, "f": factor_id, "u": units})
            plans = sa.table("neutrality_plans", *(sa.column(c) for c in (
                "event_id", "organisation_id", "planned_units", "actual_units", "deadline", "evaluation",
                "created_by_id", "created_at", "updated_at")),
                *(sa.column(c, sa.JSON) for c in ("boundary", "planned_by_category", "actual_by_category",
                                                  "offsetting_route")))
            from datetime import UTC, date, datetime

            now = datetime(2026, 11, 1, tzinfo=UTC)
            common = {"organisation_id": 1, "offsetting_route": ["zhejiang_forestry"], "deadline": date(2027, 11, 1),
                      "evaluation": "self", "created_by_id": 1, "created_at": now, "updated_at": now,
                      "boundary": {"venue_heat": {"included": False, "reason": "无"}}}
            # the summit's lines still add up to its plan and actual; the forum's lines changed after its plan
            conn.execute(plans.insert().values(event_id=1, planned_by_category={"transport": 120, "venue": 35},
                                               planned_units=155, actual_by_category={"transport": 120, "venue": 35},
                                               actual_units=155, **common))
            conn.execute(plans.insert().values(event_id=2, planned_by_category={"transport": 7, "venue": 1},
                                               planned_units=8, **common))
        upgrade(revision="0021")
        with db.engine.connect() as conn:
            sources = conn.execute(sa.text("SELECT source FROM activity_lines ORDER BY id")).scalars().all()
            rows = conn.execute(sa.text("SELECT boundary, planned_by_source, actual_by_source FROM neutrality_plans"
                                        " ORDER BY event_id")).all()
        assert sources == ["rail_travel", "coach_travel", "venue_electricity", "venue_stationary_fuel",
                           "official_cars", "venue_electricity"]
        decoded = [[json.loads(v) if isinstance(v, str) else v for v in row] for row in rows]
        assert decoded[0][1] == decoded[0][2] == {"rail_travel": 100, "coach_travel": 20, "venue_electricity": 30,
                                                  "venue_stationary_fuel": 5}
        assert decoded[0][0]["coach_travel"] == {"included": True, "reason": ""}
        assert decoded[1][1] is None and decoded[1][2] is None
        assert decoded[1][0]["coach_travel"]["included"] is False and decoded[1][0]["coach_travel"]["reason"]
        downgrade(revision="0020")
        with db.engine.connect() as conn:
            assert "source" not in {c["name"] for c in sa.inspect(conn).get_columns("activity_lines")}
            assert not sa.inspect(conn).has_table("reduction_evidence")
        upgrade()
        db.engine.dispose()


def test_orders_for_an_event_get_its_days_as_their_period_in_0022(make_app, empty_database_url):
    """0022 gives an order for an event the event's days as the period it covers; other orders none. The
    database then refuses a period with one day, or ending before it starts; the downgrade drops it."""
    migrated = make_app(SQLALCHEMY_DATABASE_URI=empty_database_url)
    order = ("INSERT INTO orders (buyer_organisation_id, created_by_id, event_id, quantity_units, amount_cny,"
             " beneficiary, retirement_reason, payment_method, status, refund_status, created_at, updated_at)"
             " VALUES (1, 1, :event, 10000, 30.00, '甲', '测试', 'card', 'completed', 'none', CURRENT_TIMESTAMP,"
             " CURRENT_TIMESTAMP)")
    with migrated.app_context():
        upgrade(revision="0020")
        with db.engine.begin() as conn:
            conn.execute(sa.text(
                "INSERT INTO organisations (kind, name, credit_code, created_at)"
                " VALUES ('buyer', '峰会组委会', '11331100MB1234567X', CURRENT_TIMESTAMP)"))
            conn.execute(sa.text(
                "INSERT INTO users (organisation_id, email, display_name, password_hash, locale, active, created_at)"
                " VALUES (1, 'b@example.org', '', 'x', 'zh_CN', true, CURRENT_TIMESTAMP)"))
            conn.execute(sa.text(
                "INSERT INTO events (organisation_id, name, starts_on, ends_on, location, organiser, boundary,"
                " created_at) VALUES (1, '峰会', '2026-10-30', '2026-11-01', '丽水', '', '', CURRENT_TIMESTAMP)"))
            conn.execute(sa.text(order), {"event": 1})
            conn.execute(sa.text(order), {"event": None})
        upgrade()
        with db.engine.connect() as conn:
            rows = conn.execute(sa.text("SELECT period_start, period_end FROM orders ORDER BY id")).all()
        assert [tuple(str(day) if day else None for day in row) for row in rows] == [
            ("2026-10-30", "2026-11-01"), (None, None)]
        for start, end in (("2026-11-01", None), ("2026-11-02", "2026-11-01")):
            with db.engine.connect() as conn, pytest.raises(sa.exc.IntegrityError):
                conn.execute(sa.text("UPDATE orders SET period_start = :start, period_end = :end WHERE id = 2"),
                             {"start": start, "end": end})
        downgrade(revision="0020")
        with db.engine.connect() as conn:
            assert "period_start" not in {c["name"] for c in sa.inspect(conn).get_columns("orders")}
        db.engine.dispose()
