"""The baseline for bench/orders_api.py: one order's reservation in raw SQL behind a bare WSGI callable.

    gunicorn --chdir bench raw_reserve_app:app      (RAW_RESERVE_DATABASE_URL=postgresql://…)

POST /reserve with the API's JSON body plus what the real endpoint would look up itself
(``batch_id``, ``price_cny_per_tonne``, ``organisation_id``, ``user_id``). It writes exactly the rows
``services.orders.place_order`` writes, in one transaction with one statement per row, in the same
lock order (``listed:<id>`` before ``reserved:<id>``):

    BEGIN
    INSERT orders … RETURNING id
    UPDATE ledger_balances … 'listed:<id>'   … WHERE units >= :n   (0 rows → ROLLBACK, 409)
    UPDATE ledger_balances … 'reserved:<id>'
    INSERT ledger_entries, INSERT order_lines, INSERT order_transitions
    COMMIT

No framework, no ORM, no authentication, no validation beyond what the SQL needs: what is left is the
floor the HTTP API is measured against. One psycopg connection per server thread, kept open.
"""

from __future__ import annotations

import json
import os
import threading
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

import psycopg

DATABASE_URL = os.environ.get("RAW_RESERVE_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
RESERVATION = timedelta(minutes=15)
_local = threading.local()


def _connection() -> psycopg.Connection:
    conn = getattr(_local, "conn", None)
    if conn is None or conn.closed:
        conn = _local.conn = psycopg.connect(DATABASE_URL, autocommit=True)  # BEGIN/COMMIT explicit
    return conn


def _respond(start_response, status: str, body: dict):
    data = json.dumps(body).encode()
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(data)))])
    return [data]


def reserve(conn: psycopg.Connection, req: dict) -> int | None:
    """The order's id, or None if the listing has fewer units than asked (nothing written)."""
    units = int(Decimal(str(req["quantity_tonnes"])) * 10_000)
    price = Decimal(str(req["price_cny_per_tonne"]))
    amount = (price * units / 10_000).quantize(Decimal("0.01"), ROUND_HALF_UP)
    listing_id, batch_id, user_id = int(req["listing_id"]), int(req["batch_id"]), int(req["user_id"])
    now = datetime.now(UTC)
    with conn.transaction(), conn.cursor() as cur:
        order_id = cur.execute(
            "INSERT INTO orders (buyer_organisation_id, created_by_id, quantity_units, amount_cny, beneficiary,"
            " retirement_reason, payment_method, status, reserved_until, refund_status, created_at, updated_at)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, 'pending_payment', %s, 'none', %s, %s) RETURNING id",
            (int(req["organisation_id"]), user_id, units, amount, req["beneficiary"], req["retirement_reason"],
             req["payment_method"], now + RESERVATION, now, now)).fetchone()[0]
        cur.execute("UPDATE ledger_balances SET units = units - %s WHERE batch_id = %s AND account = %s"
                    " AND units >= %s", (units, batch_id, f"listed:{listing_id}", units))
        if cur.rowcount != 1:
            raise _SoldOut
        cur.execute("UPDATE ledger_balances SET units = units + %s WHERE batch_id = %s AND account = %s",
                    (units, batch_id, f"reserved:{listing_id}"))
        cur.execute("INSERT INTO ledger_entries (batch_id, from_account, to_account, units, kind, ref, actor_id,"
                    " created_at) VALUES (%s, %s, %s, %s, 'reserve', %s, %s, %s)",
                    (batch_id, f"listed:{listing_id}", f"reserved:{listing_id}", units, f"order:{order_id}",
                     user_id, now))
        cur.execute("INSERT INTO order_lines (order_id, listing_id, batch_id, units, price_cny_per_tonne, amount_cny)"
                    " VALUES (%s, %s, %s, %s, %s, %s)", (order_id, listing_id, batch_id, units, price, amount))
        cur.execute("INSERT INTO order_transitions (order_id, from_status, to_status, actor_id, note, created_at)"
                    " VALUES (%s, '', 'pending_payment', %s, %s, %s)", (order_id, user_id, req["payment_method"], now))
    return order_id


class _SoldOut(Exception):
    """Raised inside the transaction block so psycopg rolls it back."""


def app(environ, start_response):
    if environ.get("REQUEST_METHOD") != "POST" or environ.get("PATH_INFO") != "/reserve":
        return _respond(start_response, "404 Not Found", {"error": {"code": "not_found"}})
    length = int(environ.get("CONTENT_LENGTH") or 0)
    req = json.loads(environ["wsgi.input"].read(length) or b"{}")
    try:
        order_id = reserve(_connection(), req)
    except _SoldOut:
        return _respond(start_response, "409 Conflict", {"error": {"code": "insufficient_credits"}})
    return _respond(start_response, "201 Created", {"id": order_id, "status": "pending_payment"})
