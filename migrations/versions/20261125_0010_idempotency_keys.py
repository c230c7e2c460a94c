"""Idempotency keys: form_submissions (0009) becomes idempotency_keys, for the API's create calls too.

A form's submission key and an API client's Idempotency-Key are the same idea: a request repeated with
the key acts once. The table gains a longer key (a client's key: up to 200 characters), the request's
fingerprint and the id of the object the API call created. Rows are copied over; form_submissions is
dropped.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-25 15:50:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('idempotency_keys',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('key', sa.String(length=200), nullable=False),
    sa.Column('endpoint', sa.String(length=100), nullable=False),
    sa.Column('fingerprint', sa.String(length=64), nullable=True),
    sa.Column('object_id', sa.Integer(), nullable=True),
    sa.Column('location', sa.String(length=500), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_idempotency_keys_user_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_idempotency_keys')),
    sa.UniqueConstraint('user_id', 'key', name='uq_idempotency_keys_user_key')
    )
    op.execute("INSERT INTO idempotency_keys (user_id, key, endpoint, location, created_at)"
               " SELECT user_id, key, endpoint, location, created_at FROM form_submissions")
    op.drop_table('form_submissions')


def downgrade():
    op.create_table('form_submissions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('key', sa.String(length=32), nullable=False),
    sa.Column('endpoint', sa.String(length=100), nullable=False),
    sa.Column('location', sa.String(length=500), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_form_submissions_user_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_form_submissions')),
    sa.UniqueConstraint('user_id', 'key', name='uq_form_submissions_user_key')
    )
    # Web form keys only (the API's keys have no place there).
    op.execute("INSERT INTO form_submissions (user_id, key, endpoint, location, created_at)"
               " SELECT user_id, key, endpoint, location, created_at FROM idempotency_keys"
               " WHERE fingerprint IS NULL AND length(key) = 32")
    op.drop_table('idempotency_keys')
