"""Order history as data: each transition's note becomes a code and its parameters.

The services wrote English audit lines into ``order_transitions.note`` ("card pi_… (webhook evt_…)",
"bank transfer ICBC-…", a certificate number) and the pages parsed them back with regular expressions to
translate them. From here on a note is ``note_code`` + ``note_params`` (JSON), translated when shown.
Existing rows are converted with the same patterns the pages used; a note none of them recognises stays
as free text in ``note``. The downgrade writes the English lines back.

Standing alone: the patterns and their codes are copied here, not imported from the application.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-26 10:00:00

"""
import re

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None

transitions = sa.table(
    'order_transitions',
    sa.column('id', sa.Integer()),
    sa.column('note', sa.String(300)),
    sa.column('note_code', sa.String(40)),
    sa.column('note_params', sa.JSON(none_as_null=True)),
)

#: how a card payment became known, as the old notes said it → as the new parameter says it
_VIA = {'webhook': 'webhook', 're-read': 'reread', 'pay page': 'pay_page', 'order page': 'order_page',
        'paid while cancelling': 'cancelling'}
_VIA_BACK = {new: old for old, new in _VIA.items()}

#: (pattern, code, parameters from the match), tried in this order (the order the pages tried them in)
_PATTERNS = (
    (re.compile(r'card (\S+) \(webhook (\S+)\)'), 'card_paid',
     lambda m: {'intent': m[1], 'via': 'webhook', 'event': m[2]}),
    (re.compile(r'card (\S+) \((re-read|pay page|order page|paid while cancelling)\)'), 'card_paid',
     lambda m: {'intent': m[1], 'via': _VIA[m[2]]}),
    (re.compile(r'card refund (\S+)'), 'card_refunded', lambda m: {'refund': m[1]}),
    (re.compile(r'bank transfer (.+)'), 'bank_transfer', lambda m: {'reference': m[1]}),
    (re.compile(r'refund made: (.+)'), 'refund_made', lambda m: {'reference': m[1]}),
    (re.compile(r'payment after cancellation: (.+)'), 'payment_after_cancellation',
     lambda m: {'payment': _nested(m[1])}),
    (re.compile(r'late payment, units gone: (.+)'), 'late_payment_units_gone',
     lambda m: {'payment': _nested(m[1])}),
    (re.compile(r'cancelled by the buyer'), 'cancelled_by_buyer', lambda m: None),
    (re.compile(r'cancelled after payment'), 'cancelled_after_payment', lambda m: None),
    (re.compile(r'refund requested by the buyer'), 'refund_requested', lambda m: None),
    (re.compile(r'reservation expired'), 'reservation_expired', lambda m: None),
    (re.compile(r'retirement started'), 'retirement_started', lambda m: None),
    (re.compile(r'(TH-\d{4}-\d{6,})'), 'certificate_issued', lambda m: {'number': m[1]}),
)

_PLAIN = {'cancelled_by_buyer': 'cancelled by the buyer', 'cancelled_after_payment': 'cancelled after payment',
          'refund_requested': 'refund requested by the buyer', 'reservation_expired': 'reservation expired',
          'retirement_started': 'retirement started'}


def parse(note):
    """An old note → (code, params), or None when no pattern knows it (it stays free text)."""
    note = (note or '').strip()
    if note in ('card', 'bank_transfer'):
        return 'placed', {'payment_method': note}
    for pattern, code, params in _PATTERNS:
        match = pattern.fullmatch(note)
        if match:
            return code, params(match)
    return None


def _nested(note):
    parsed = parse(note)
    if parsed is None:
        return {'code': 'text', 'params': {'text': note}}
    code, params = parsed
    return {'code': code, 'params': params or {}}


def render(code, params):
    """(code, params) → the English line the services used to write."""
    params = params or {}
    if code == 'placed':
        return params.get('payment_method', '')
    if code == 'card_paid':
        if params.get('via') == 'webhook':
            return f"card {params.get('intent')} (webhook {params.get('event')})"
        return f"card {params.get('intent')} ({_VIA_BACK.get(params.get('via'), 'pay page')})"
    if code == 'card_refunded':
        return f"card refund {params.get('refund')}"
    if code == 'bank_transfer':
        return f"bank transfer {params.get('reference')}"
    if code == 'refund_made':
        return f"refund made: {params.get('reference')}"
    if code in ('payment_after_cancellation', 'late_payment_units_gone'):
        inner = params.get('payment') or {}
        prefix = 'payment after cancellation: ' if code == 'payment_after_cancellation' else 'late payment, units gone: '
        return prefix + render(inner.get('code'), inner.get('params'))
    if code == 'certificate_issued':
        return params.get('number', '')
    if code == 'text':
        return params.get('text', '')
    return _PLAIN.get(code, code or '')


def upgrade():
    with op.batch_alter_table('order_transitions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('note_code', sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column('note_params', sa.JSON(), nullable=True))
    conn = op.get_bind()
    rows = conn.execute(sa.select(transitions.c.id, transitions.c.note).where(transitions.c.note != '')).all()
    updates = []
    for row_id, note in rows:
        parsed = parse(note)
        if parsed is not None:
            updates.append({'row_id': row_id, 'code': parsed[0], 'params': parsed[1] or None})
    if updates:
        conn.execute(transitions.update().where(transitions.c.id == sa.bindparam('row_id'))
                     .values(note='', note_code=sa.bindparam('code'),
                             note_params=sa.bindparam('params', type_=sa.JSON(none_as_null=True))), updates)


def downgrade():
    conn = op.get_bind()
    rows = conn.execute(sa.select(transitions.c.id, transitions.c.note_code, transitions.c.note_params)
                        .where(transitions.c.note_code.is_not(None))).all()
    updates = [{'row_id': row_id, 'text': render(code, params)[:300]} for row_id, code, params in rows]
    if updates:
        conn.execute(transitions.update().where(transitions.c.id == sa.bindparam('row_id'))
                     .values(note=sa.bindparam('text')), updates)
    with op.batch_alter_table('order_transitions', schema=None) as batch_op:
        batch_op.drop_column('note_params')
        batch_op.drop_column('note_code')
