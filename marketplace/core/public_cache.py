"""Public reads from a cache whose invalidation is exact: a version per scope, bumped by the database.

Each feature names the tables a scope of public pages is drawn from (``watch("registry", "listings", …)``).
A trigger on each of those tables bumps the scope's row in ``public_versions`` in the same transaction as
the write, whatever wrote it: the ORM, a Core statement on the order path, a migration or psql. A cached
answer is stored under the versions of its scopes, read at the start of the request; a reader that sees
the new version sees the new data (both committed together), and an answer cached under an old version
is never looked up again. Over-invalidation (a write that changed nothing shown) costs a recomputation,
never a stale figure.

The cache itself is Flask-Caching: Redis when ``CACHE_REDIS_URL`` (or ``REDIS_URL``) is set, else this
process's memory (the embedded setup); ``PUBLIC_CACHE=False`` turns it off.
"""

from __future__ import annotations

import hashlib
import os
import re
import threading

import sqlalchemy as sa
import sqlalchemy.orm as so
from flask import Flask
from flask_caching import Cache

from marketplace.core.models import PublicVersion
from marketplace.extensions import db

cache = Cache()

#: scope → the tables its pages are drawn from (filled by each feature's models at import)
SCOPES: dict[str, set[str]] = {}

#: How long a cached answer is kept at most (seconds); a version change retires it at once anyway.
DEFAULT_TIMEOUT = 3600


#: (scope, table) → (column, value): only writes of rows that have (or had) that value bump the scope
CONDITIONS: dict[tuple[str, str], tuple[str, str]] = {}


def watch(scope: str, *tables: str, only_where: tuple[str, str] | None = None) -> None:
    """Writes to ``tables`` change what ``scope``'s pages show; with ``only_where=(column, value)``, only
    writes of rows whose column has that value before or after the write (orders: only completed ones)."""
    SCOPES.setdefault(scope, set()).update(tables)
    if only_where:
        for table in tables:
            CONDITIONS[(scope, table)] = only_where


# --- the triggers ----------------------------------------------------------------------------------

PG_FUNCTION = """
CREATE OR REPLACE FUNCTION bump_public_version() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO public_versions (scope, shard, token, n)
    VALUES (TG_ARGV[0], pg_backend_pid() % 16, md5(random()::text || clock_timestamp()::text), 1)
    ON CONFLICT (scope, shard) DO UPDATE SET n = public_versions.n + 1;
    RETURN NULL;
END $$
"""
#: Once per statement, when a row it wrote had (or now has) TG_ARGV[1] = TG_ARGV[2] (the transition tables).
PG_FUNCTION_WHERE = """
CREATE OR REPLACE FUNCTION bump_public_version_where() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    touched boolean := false;
BEGIN
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        EXECUTE format('SELECT EXISTS (SELECT 1 FROM new_rows WHERE %I = %L)', TG_ARGV[1], TG_ARGV[2]) INTO touched;
    END IF;
    IF NOT touched AND TG_OP IN ('UPDATE', 'DELETE') THEN
        EXECUTE format('SELECT EXISTS (SELECT 1 FROM old_rows WHERE %I = %L)', TG_ARGV[1], TG_ARGV[2]) INTO touched;
    END IF;
    IF touched THEN
        INSERT INTO public_versions (scope, shard, token, n)
        VALUES (TG_ARGV[0], pg_backend_pid() % 16, md5(random()::text || clock_timestamp()::text), 1)
        ON CONFLICT (scope, shard) DO UPDATE SET n = public_versions.n + 1;
    END IF;
    RETURN NULL;
END $$
"""


def _conditional_ddl(dialect: str, scope: str, table: str, column: str, value: str) -> list[str]:
    """Triggers that bump ``scope`` only for writes of rows with ``column = value`` before or after: on
    PostgreSQL once per statement (its transition tables say which rows), on SQLite per row (WHEN)."""
    name = f"public_version_{scope}_{table}"
    test = {"INSERT": f"NEW.{column} = '{value}'", "DELETE": f"OLD.{column} = '{value}'",
            "UPDATE": f"(OLD.{column} = '{value}' OR NEW.{column} = '{value}')"}
    statements = []
    for event, condition in test.items():
        trigger = f"{name}_{event.lower()}"
        if dialect == "postgresql":  # once per statement, whatever the number of rows (bulk loads)
            tables = {"INSERT": "NEW TABLE AS new_rows", "DELETE": "OLD TABLE AS old_rows",
                      "UPDATE": "OLD TABLE AS old_rows NEW TABLE AS new_rows"}[event]
            statements += [f"DROP TRIGGER IF EXISTS {trigger} ON {table}",
                           f"CREATE TRIGGER {trigger} AFTER {event} ON {table} REFERENCING {tables} "
                           f"FOR EACH STATEMENT EXECUTE FUNCTION bump_public_version_where('{scope}', '{column}', "
                           f"'{value}')"]
        else:
            statements += [f"DROP TRIGGER IF EXISTS {trigger}", _sqlite_trigger(trigger, event, table, scope, condition)]
    return statements


def _sqlite_trigger(trigger: str, event: str, table: str, scope: str, condition: str | None = None) -> str:
    when = f" WHEN {condition}" if condition else ""
    return (f"CREATE TRIGGER {trigger} AFTER {event} ON {table}{when} BEGIN "  # noqa: S608 — names from the code, not input
            f"INSERT OR IGNORE INTO public_versions (scope, shard, token, n) VALUES ('{scope}', 0, lower(hex(randomblob(8))), 0); "
            f"UPDATE public_versions SET n = n + 1 WHERE scope = '{scope}' AND shard = 0; END")


def trigger_ddl(dialect: str, scope: str, table: str, only_where: tuple[str, str] | None = None) -> list[str]:
    """The statements that make every write to ``table`` bump ``scope`` (PostgreSQL: once per statement;
    SQLite: once per row, its only kind)."""
    if only_where:
        return _conditional_ddl(dialect, scope, table, *only_where)
    name = f"public_version_{scope}_{table}"
    if dialect == "postgresql":
        return [f"DROP TRIGGER IF EXISTS {name} ON {table}",
                f"CREATE TRIGGER {name} AFTER INSERT OR UPDATE OR DELETE ON {table} "
                f"FOR EACH STATEMENT EXECUTE FUNCTION bump_public_version('{scope}')"]
    statements = []
    for event in ("INSERT", "UPDATE", "DELETE"):
        trigger = f"{name}_{event.lower()}"
        statements += [f"DROP TRIGGER IF EXISTS {trigger}", _sqlite_trigger(trigger, event, table, scope)]
    return statements


def all_trigger_ddl(dialect: str, scopes: dict[str, set[str]] | None = None,
                    conditions: dict[tuple[str, str], tuple[str, str]] | None = None,
                    tables: set[str] | None = None) -> list[str]:
    """Every trigger of ``scopes`` (default: the ones the features watch); the migrations pass their own."""
    scopes = SCOPES if scopes is None else scopes
    conditions = CONDITIONS if conditions is None else conditions
    statements = [PG_FUNCTION, PG_FUNCTION_WHERE] if dialect == "postgresql" else []
    for scope, watched in sorted(scopes.items()):
        for table in sorted(watched):
            if tables is None or table in tables:
                statements += trigger_ddl(dialect, scope, table, conditions.get((scope, table)))
    return statements


@sa.event.listens_for(db.metadata, "after_create")
def _create_triggers(target, connection, **kw):  # noqa: ARG001 — SQLAlchemy's signature
    """create_all (tests, benches, tools) gets the triggers the migrations create."""
    tables = {t.name for t in kw.get("tables") or target.sorted_tables}
    if "public_versions" not in tables:
        return
    for statement in all_trigger_ddl(connection.dialect.name, tables=tables):
        connection.execute(sa.DDL(statement.replace("%", "%%")))  # DDL formats with %: the function's %I, %L


# --- reading versions ------------------------------------------------------------------------------

_VERSIONS = sa.select(PublicVersion.scope, PublicVersion.shard, PublicVersion.token, PublicVersion.n)
#: Scope names are written in the code (watch()); checked anyway before they are put into SQL.
_SCOPE_NAME = re.compile(r"^[a-z_]{1,40}$")
#: (pid, url) → this thread's connection that reads versions on PostgreSQL: autocommit, kept open, so a
#: read is one round trip (no pool checkout, no transaction, no reset)
_local = threading.local()


def _connection(url: str):
    import psycopg  # noqa: PLC0415 — PostgreSQL only

    key = (os.getpid(), url)
    conn = getattr(_local, "connections", {}).get(key)
    if conn is None or conn.closed:
        conn = psycopg.connect(url, autocommit=True, connect_timeout=5)
        _local.__dict__.setdefault("connections", {})[key] = conn
    return conn


def _read_postgres(url: str, scopes: tuple[str, ...]):
    if not all(_SCOPE_NAME.match(scope) for scope in scopes):
        raise ValueError(f"not a scope name: {scopes!r}")
    sql = "SELECT scope, shard, token, n FROM public_versions WHERE scope IN ({})".format(  # noqa: S608 — checked names
        ", ".join(f"'{scope}'" for scope in scopes))
    for attempt in (1, 2):
        conn = _connection(url)
        try:
            return conn.execute(sql).fetchall()
        except Exception as exc:  # a connection the server closed (a restart): once more on a new one
            if attempt == 2 or not exc.__class__.__module__.startswith("psycopg"):
                raise
            conn.close()
    return []


def versions(session: so.Session, scopes: tuple[str, ...]) -> str:
    """The current versions of ``scopes`` as one string (a scope never written yet is "0"). Read before the
    page's data: what the page then reads is at least as new as the versions it is stored under.

    On PostgreSQL through a connection of its own in autocommit (one round trip, no transaction left open);
    elsewhere through ``session``."""
    if not scopes:
        return ""
    bind = session.get_bind()
    if bind.dialect.name == "postgresql" and bind.dialect.driver == "psycopg":
        rows = _read_postgres(bind.url.set(drivername="postgresql").render_as_string(hide_password=False), scopes)
    else:
        rows = session.execute(_VERSIONS.where(PublicVersion.scope.in_(scopes))).all()
    return _joined(rows, scopes)


def _joined(rows, scopes: tuple[str, ...]) -> str:
    found: dict[str, list[str]] = {}
    for scope, shard, token, n in sorted(rows, key=lambda row: (row[0], row[1])):
        found.setdefault(scope, []).append(f"{shard}:{token}.{n}")
    return "|".join(",".join(found.get(scope, ["0"])) for scope in scopes)


def read_versions(app: Flask, scopes: tuple[str, ...]) -> str:
    """``versions`` outside a request (the fast path in front of the application): on PostgreSQL through the
    same kept connection, without an application context; elsewhere in one of its own."""
    if not scopes:
        return ""
    url = _postgres_urls.get(id(app))
    if url is None:
        parsed = sa.engine.make_url(app.config["SQLALCHEMY_DATABASE_URI"])
        url = (parsed.set(drivername="postgresql").render_as_string(hide_password=False)
               if parsed.get_backend_name() == "postgresql" and parsed.get_driver_name() == "psycopg" else "")
        _postgres_urls[id(app)] = url
    if url:
        return _joined(_read_postgres(url, scopes), scopes)
    with app.app_context():
        try:
            return versions(db.session, scopes)
        finally:
            db.session.remove()


#: id(app) → its database's URL for psycopg when it is PostgreSQL through psycopg, else ""
_postgres_urls: dict[int, str] = {}


def cache_key(*parts: str) -> str:
    return "public:" + hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:32]


def init_cache(app: Flask) -> None:
    redis_url = app.config.get("CACHE_REDIS_URL") or app.config.get("REDIS_URL")
    if not app.config.get("PUBLIC_CACHE", True):
        config = {"CACHE_TYPE": "NullCache"}
    elif redis_url:
        config = {"CACHE_TYPE": "RedisCache", "CACHE_REDIS_URL": redis_url,
                  "CACHE_OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5}}
    else:
        config = {"CACHE_TYPE": "SimpleCache", "CACHE_THRESHOLD": 2000}
    config.setdefault("CACHE_KEY_PREFIX", app.config.get("CACHE_KEY_PREFIX", "tanhui:"))
    config["CACHE_DEFAULT_TIMEOUT"] = DEFAULT_TIMEOUT
    cache.init_app(app, config=config)
