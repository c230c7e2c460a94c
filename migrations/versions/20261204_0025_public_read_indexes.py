"""Public reads: versions of what public pages show (public_versions, bumped by triggers on the tables
they are drawn from); indexes for the retirement list's purpose filter and the public listings' order.

Revision ID: 0025
Revises: 0023
Create Date: 2026-12-04 19:00:00

"""
import sqlalchemy as sa
from alembic import op


# revision identifiers, used by Alembic.
revision = '0025'
down_revision = '0023'
branch_labels = None
depends_on = None

#: The scopes and tables of marketplace.core.public_cache.watch at this revision (registry/__init__.py,
#: certificates/__init__.py); the DDL below is that module's, copied so the migration stands alone.
SCOPES = {
    "registry": ["credit_batches", "ledger_balances", "listings", "organisations", "project_parcels", "projects",
                 "regions"],
    "retirements": ["certificates", "orders", "organisations", "projects", "regions", "signing_keys"],
}
CONDITIONS = {("retirements", "orders"): ("status", "completed")}

PG_FUNCTION = """
CREATE OR REPLACE FUNCTION bump_public_version() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO public_versions (scope, shard, token, n)
    VALUES (TG_ARGV[0], pg_backend_pid() % 16, md5(random()::text || clock_timestamp()::text), 1)
    ON CONFLICT (scope, shard) DO UPDATE SET n = public_versions.n + 1;
    RETURN NULL;
END $$
"""
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


def _sqlite_trigger(trigger, event, table, scope, condition=None):
    when = f" WHEN {condition}" if condition else ""
    return (f"CREATE TRIGGER {trigger} AFTER {event} ON {table}{when} BEGIN "
            f"INSERT OR IGNORE INTO public_versions (scope, shard, token, n) VALUES ('{scope}', 0, lower(hex(randomblob(8))), 0); "
            f"UPDATE public_versions SET n = n + 1 WHERE scope = '{scope}' AND shard = 0; END")


def _triggers(dialect, scope, table):
    """(name, create statement) of each trigger for one watched table."""
    name = f"public_version_{scope}_{table}"
    condition = CONDITIONS.get((scope, table))
    if condition:
        column, value = condition
        tests = {"INSERT": f"NEW.{column} = '{value}'", "DELETE": f"OLD.{column} = '{value}'",
                 "UPDATE": f"(OLD.{column} = '{value}' OR NEW.{column} = '{value}')"}
        if dialect == "postgresql":
            transition = {"INSERT": "NEW TABLE AS new_rows", "DELETE": "OLD TABLE AS old_rows",
                          "UPDATE": "OLD TABLE AS old_rows NEW TABLE AS new_rows"}
            return [(f"{name}_{event.lower()}", f"CREATE TRIGGER {name}_{event.lower()} AFTER {event} ON {table} "
                     f"REFERENCING {transition[event]} FOR EACH STATEMENT EXECUTE FUNCTION "
                     f"bump_public_version_where('{scope}', '{column}', '{value}')")
                    for event in tests]
        return [(f"{name}_{event.lower()}", _sqlite_trigger(f"{name}_{event.lower()}", event, table, scope, test))
                for event, test in tests.items()]
    if dialect == "postgresql":
        return [(name, f"CREATE TRIGGER {name} AFTER INSERT OR UPDATE OR DELETE ON {table} "
                       f"FOR EACH STATEMENT EXECUTE FUNCTION bump_public_version('{scope}')")]
    return [(f"{name}_{event.lower()}", _sqlite_trigger(f"{name}_{event.lower()}", event, table, scope))
            for event in ("INSERT", "UPDATE", "DELETE")]


def upgrade():
    op.create_table('public_versions',
    sa.Column('scope', sa.String(length=40), nullable=False),
    sa.Column('shard', sa.SmallInteger(), autoincrement=False, nullable=False),
    sa.Column('token', sa.String(length=40), nullable=False),
    sa.Column('n', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('scope', 'shard', name=op.f('pk_public_versions'))
    )
    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.create_index('ix_orders_purpose_completed_at', ['purpose', 'completed_at'], unique=False)
    with op.batch_alter_table('listings', schema=None) as batch_op:
        batch_op.create_index('ix_listings_active_price', ['price_cny_per_tonne', 'id'], unique=False,
                              postgresql_where=sa.text("status = 'active'"), sqlite_where=sa.text("status = 'active'"))
    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":
        op.execute(PG_FUNCTION)
        op.execute(PG_FUNCTION_WHERE)
    for scope, tables in sorted(SCOPES.items()):
        for table in tables:
            for _name, statement in _triggers(dialect, scope, table):
                op.execute(statement)


def downgrade():
    dialect = op.get_bind().dialect.name
    for scope, tables in sorted(SCOPES.items()):
        for table in tables:
            for name, _statement in _triggers(dialect, scope, table):
                op.execute(f"DROP TRIGGER IF EXISTS {name}" + (f" ON {table}" if dialect == "postgresql" else ""))
    if dialect == "postgresql":
        op.execute("DROP FUNCTION bump_public_version_where()")
        op.execute("DROP FUNCTION bump_public_version()")
    with op.batch_alter_table('listings', schema=None) as batch_op:
        batch_op.drop_index('ix_listings_active_price')
    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.drop_index('ix_orders_purpose_completed_at')
    op.drop_table('public_versions')
