"""The append-only refusal names the table it guards.

0002's trigger function tanhui_append_only() guards both ledger_entries and serial_ranges but its message
always said "ledger_entries is append-only"; it now names the table the refused UPDATE or DELETE was on
(TG_TABLE_NAME). PostgreSQL only: SQLite has no such trigger. The function's text is written out here,
as it stands at this revision.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-02 09:00:00

"""
from alembic import op


# revision identifiers, used by Alembic.
revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None

APPEND_ONLY_NAMING_THE_TABLE = """CREATE OR REPLACE FUNCTION tanhui_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION '% is append-only (% refused)', TG_TABLE_NAME, TG_OP USING ERRCODE = 'insufficient_privilege';
END $$"""

APPEND_ONLY_AS_IN_0002 = """CREATE OR REPLACE FUNCTION tanhui_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'ledger_entries is append-only (% refused)', TG_OP USING ERRCODE = 'insufficient_privilege';
END $$"""


def upgrade():
    if op.get_bind().dialect.name == "postgresql":
        op.execute(APPEND_ONLY_NAMING_THE_TABLE)


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        op.execute(APPEND_ONLY_AS_IN_0002)
