"""Do the bureau's figures stay fast at a million retirements? GET /api/v1/stats/summary and the
dashboard page at 1,000 and at 1,000,000 completed orders, p50/p95 and their ratio.

    .venv/bin/python bench/dashboard.py [--orders 1000000] [--requests 40] [--admin-url URL]

Creates a scratch PostgreSQL database (postgres@127.0.0.1, trust), builds the schema, and writes the
data with bulk SQL (INSERT … SELECT generate_series), never through the HTTP API: 9 counties,
27 townships, 400 villages each with a cooperative, a verified project, a batch and a listing;
300 buyers; then completed orders spread over two years, each with its order line, its ledger
retirement range (serial_ranges, ref "order:<id>") and the batches' ledger balances to match. The
journal (ledger_entries) is not generated: no dashboard reads it. The aggregates are then built by
the real `stats rebuild` code. Requests go through the Flask test client in this process (no
network, no gunicorn), so the figures are the application's own time. The database is dropped at
the end.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import sqlalchemy as sa  # noqa: E402

from marketplace import create_app  # noqa: E402
from marketplace.extensions import db  # noqa: E402

COUNTIES, TOWNSHIPS_PER_COUNTY, VILLAGES, BUYERS = 9, 3, 400, 300
BATCH_UNITS = 1_000_000_000  # 100,000 t per batch: room for every order
BUFFER_UNITS = BATCH_UNITS // 10
PASSWORD = "bench-password-2026"


def say(message: str) -> None:
    print(message, flush=True)


def percentile(samples: list[float], p: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def build_registry(conn) -> None:
    """Regions, organisations, users, projects, batches, listings: a few hundred rows each."""
    x = conn.execute
    x(sa.text("INSERT INTO regions (id, parent_id, level, name) VALUES (1, NULL, 'province', '浙江省'), "
              "(2, 1, 'city', '丽水市')"))
    x(sa.text("INSERT INTO regions (id, parent_id, level, name) SELECT 100 + c, 2, 'county', '县' || c "
              "FROM generate_series(1, CAST(:n AS int)) c"), {"n": COUNTIES})
    x(sa.text("INSERT INTO regions (id, parent_id, level, name) SELECT 1000 + t, 100 + ((t - 1) / :per) + 1, "
              "'township', '乡镇' || t FROM generate_series(1, CAST(:n AS int)) t"),
      {"per": TOWNSHIPS_PER_COUNTY, "n": COUNTIES * TOWNSHIPS_PER_COUNTY})
    x(sa.text("INSERT INTO regions (id, parent_id, level, name) SELECT 10000 + v, 1000 + ((v - 1) % :t) + 1, "
              "'village', '村' || v FROM generate_series(1, CAST(:n AS int)) v"),
      {"t": COUNTIES * TOWNSHIPS_PER_COUNTY, "n": VILLAGES})
    # Organisations: 1 bureau, sellers 1001…, buyers 5001….
    x(sa.text("INSERT INTO organisations (id, kind, name, credit_code, created_at) VALUES "
              "(1, 'bureau', '丽水市生态环境局', '11331100MB19574320', now())"))
    x(sa.text("INSERT INTO organisations (id, kind, name, credit_code, created_at) SELECT 1000 + v, 'seller', "
              "'村' || v || '股份经济合作社', 'S' || lpad(v::text, 17, '0'), now() FROM generate_series(1, CAST(:n AS int)) v"),
      {"n": VILLAGES})
    x(sa.text("INSERT INTO organisations (id, kind, name, credit_code, created_at) SELECT 5000 + b, 'buyer', "
              "'购买单位' || b, 'B' || lpad(b::text, 17, '0'), now() FROM generate_series(1, CAST(:n AS int)) b"), {"n": BUYERS})
    x(sa.text("INSERT INTO users (id, organisation_id, email, display_name, password_hash, locale, active, created_at) "
              "SELECT 100 + b, 5000 + b, 'buyer' || b || '@bench.example', '', 'x', 'zh_CN', true, now() "
              "FROM generate_series(1, CAST(:n AS int)) b"), {"n": BUYERS})
    x(sa.text("INSERT INTO users (id, organisation_id, email, display_name, password_hash, locale, active, created_at) "
              "VALUES (1, 1000 + 1, 'seller1@bench.example', '', 'x', 'zh_CN', true, now())"))
    x(sa.text("INSERT INTO projects (id, seller_organisation_id, village_id, name, area_hectares, forest_type, "
              "methodology, crediting_start, crediting_end, description, location, status, review_note, created_at, "
              "verified_at) SELECT v, 1000 + v, 10000 + v, '村' || v || '森林经营碳汇项目', 1000, '杉木林', "
              "'CCER-14-001-V01', '2020-01-01', '2040-12-31', '', '', 'verified', '', now(), now() "
              "FROM generate_series(1, CAST(:n AS int)) v"), {"n": VILLAGES})
    x(sa.text("INSERT INTO credit_batches (id, project_id, vintage_start, vintage_end, quantity_units, buffer_units, "
              "serial_start, serial_end, next_serial, next_buffer_serial, verification_body, report_reference, "
              "issued_by_id, issued_at) SELECT v, v, make_date(2021 + v % 3, 1, 1), make_date(2021 + v % 3, 12, 31), "
              ":q, :b, v::bigint * :q, (v + 1)::bigint * :q, v::bigint * :q, (v + 1)::bigint * :q - :b, '中环联合认证中心', "
              "'CEC-' || v, 1, now() FROM generate_series(1, CAST(:n AS int)) v"),
      {"q": BATCH_UNITS, "b": BUFFER_UNITS, "n": VILLAGES})
    x(sa.text("INSERT INTO listings (id, seller_organisation_id, batch_id, price_cny_per_tonne, min_order_units, "
              "status, created_at, updated_at) SELECT v, 1000 + v, v, 30 + (v % 9), 1, 'active', now(), now() "
              "FROM generate_series(1, CAST(:n AS int)) v"), {"n": VILLAGES})
    for name in ("regions", "organisations", "users", "projects", "credit_batches", "listings"):
        x(sa.text(f"SELECT setval('{name}_id_seq', (SELECT max(id) FROM {name}))"))


def add_orders(conn, first: int, last: int) -> None:
    """Completed orders first…last with their line and retirement range, in one INSERT … SELECT each."""
    x = conn.execute
    x(sa.text("""
        INSERT INTO orders (id, buyer_organisation_id, created_by_id, event_id, quantity_units, amount_cny, beneficiary,
            retirement_reason, payment_method, status, refund_status, created_at, updated_at, paid_at, completed_at)
        SELECT o, 5000 + b, 100 + b, NULL, u, round(u * (30 + (v % 9)) / 10000.0, 2) + 0.01, '购买单位' || b,
            '活动碳中和', 'bank_transfer', 'completed', 'none', t - interval '2 hours', t, t - interval '1 hour', t
        FROM (SELECT o, 1 + (hashint(o, 1) % :buyers) AS b, 1 + (hashint(o, 2) % :villages) AS v,
                     1 + (hashint(o, 3) % 20000) AS u,
                     timestamptz '2025-01-01 00:00+08' + (hashint(o, 4) % (700 * 86400)) * interval '1 second' AS t
              FROM generate_series(CAST(:first AS int), CAST(:last AS int)) o) g
    """), {"first": first, "last": last, "buyers": BUYERS, "villages": VILLAGES})
    # The line's amount is the order's (one line per order); + 0.01 above keeps amounts positive.
    x(sa.text("""
        INSERT INTO order_lines (order_id, listing_id, batch_id, units, price_cny_per_tonne, amount_cny)
        SELECT o.id, g.v, g.v, o.quantity_units, 30 + (g.v % 9), o.amount_cny
        FROM orders o JOIN (SELECT o AS id, 1 + (hashint(o, 2) % :villages) AS v
                            FROM generate_series(CAST(:first AS int), CAST(:last AS int)) o) g ON g.id = o.id
    """), {"first": first, "last": last, "villages": VILLAGES})
    # Retirement ranges: consecutive serials per batch, after whatever the batch already retired.
    x(sa.text("""
        INSERT INTO serial_ranges (batch_id, start, "end", kind, ref, created_at)
        SELECT l.batch_id, b.next_serial + s.before, b.next_serial + s.before + l.units, 'retirement',
               'order:' || l.order_id, o.completed_at
        FROM (SELECT order_id, sum(units) OVER (PARTITION BY batch_id ORDER BY order_id) - units AS before
              FROM order_lines WHERE order_id BETWEEN :first AND :last) s
        JOIN order_lines l ON l.order_id = s.order_id JOIN credit_batches b ON b.id = l.batch_id
        JOIN orders o ON o.id = l.order_id
    """), {"first": first, "last": last})
    x(sa.text("""
        UPDATE credit_batches b SET next_serial = b.next_serial + r.units
        FROM (SELECT batch_id, sum(units) AS units FROM order_lines WHERE order_id BETWEEN :first AND :last
              GROUP BY batch_id) r WHERE r.batch_id = b.id
    """), {"first": first, "last": last})
    x(sa.text("SELECT setval('orders_id_seq', :last)"), {"last": last})


def write_balances(conn) -> None:
    """The batches' ledger balances to match: issued, buffer, retired, the rest listed."""
    conn.execute(sa.text("DELETE FROM ledger_balances"))
    conn.execute(sa.text("""
        INSERT INTO ledger_balances (batch_id, account, units)
        SELECT b.id, a.account, CASE a.account WHEN 'issuance' THEN -b.quantity_units WHEN 'buffer' THEN b.buffer_units
            WHEN 'retired' THEN b.next_serial - b.serial_start
            WHEN 'listed:' || b.id THEN b.serial_end - b.buffer_units - b.next_serial ELSE 0 END
        FROM credit_batches b CROSS JOIN LATERAL (VALUES ('issuance'), ('available'), ('buffer'), ('retired'),
            ('cancelled'), ('listed:' || b.id), ('reserved:' || b.id)) a(account)
    """))


def measure(client, url: str, headers: dict | None, requests: int) -> tuple[list[float], list[float]]:
    """Wall-clock seconds of each request, and this process's CPU seconds (the application's Python,
    not PostgreSQL's work; less sensitive to other load on the machine)."""
    for _ in range(3):  # warm caches and the connection pool
        assert client.get(url, headers=headers).status_code == 200
    samples, cpu = [], []
    for _ in range(requests):
        start, start_cpu = time.perf_counter(), time.process_time()
        response = client.get(url, headers=headers)
        samples.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
        assert response.status_code == 200, (url, response.status_code)
    return samples, cpu


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--orders", type=int, default=1_000_000)
    parser.add_argument("--small", type=int, default=1_000)
    parser.add_argument("--requests", type=int, default=60)
    parser.add_argument("--admin-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    options = parser.parse_args()

    name = f"tanhui_bench_dashboard_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(options.admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = sa.engine.make_url(options.admin_url).set(database=name).render_as_string(hide_password=False)
    instance = tempfile.mkdtemp(prefix="tanhui-bench-")
    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "INSTANCE_PATH": instance, "SECRET_KEY": "bench", "TANHUI_ENV": "development",
                      "SERVER_NAME": "localhost", "SESSION_COOKIE_SECURE": False, "REMEMBER_COOKIE_SECURE": False,
                      "CELERY_BROKER_URL": "memory://", "RATELIMIT_ENABLED": False, "RATELIMIT_STORAGE_URI": "memory://",
                      "TWO_STEP_REQUIRED_ROLES": frozenset()})
    results, cpu_results = {}, {}
    rebuilds = {}
    try:
        with app.app_context():
            db.create_all()
            with db.engine.begin() as conn:
                # A cheap, deterministic integer hash of (row, salt) for spreading the data.
                conn.execute(sa.text("CREATE FUNCTION hashint(n bigint, salt int) RETURNS bigint LANGUAGE sql "
                                     "IMMUTABLE AS $$ SELECT abs(hashtextextended(n::text, salt)) $$"))
                build_registry(conn)
            from marketplace.accounts import service as accounts
            from marketplace.stats import aggregates

            bureau = accounts.create_user(db.session, organisation_id=1, email="bureau@bench.example",
                                          password=PASSWORD)
            db.session.commit()
            token = accounts.create_api_token(db.session, bureau.id, "bench")
            db.session.commit()
        client = app.test_client()
        login = client.get("/login").get_data(as_text=True)
        csrf = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', login).group(1)
        assert client.post("/login", data={"email": "bureau@bench.example", "password": PASSWORD,
                                           "csrf_token": csrf}).status_code == 302
        auth = {"Authorization": f"Bearer {token}"}

        done = 0
        for scale in (options.small, options.orders):
            started = time.perf_counter()
            step = 100_000
            for first in range(done + 1, scale + 1, step):
                last = min(scale, first + step - 1)
                with app.app_context(), db.engine.begin() as conn:
                    add_orders(conn, first, last)
                say(f"  orders {last:>9,} / {scale:,} written ({time.perf_counter() - started:5.1f} s)")
            with app.app_context():
                with db.engine.begin() as conn:
                    write_balances(conn)
                    conn.execute(sa.text("ANALYZE"))
                rebuild_started = time.perf_counter()

                def progress(n, total, rebuild_started=rebuild_started):
                    if n == total or n % 100_000 < 5000:
                        say(f"  stats rebuild {n:>9,} / {total:,} ({time.perf_counter() - rebuild_started:5.1f} s)")

                counted = aggregates.rebuild(db.session, progress=progress)
                db.session.commit()
                rebuild_seconds = time.perf_counter() - rebuild_started
                with db.engine.begin() as conn:
                    conn.execute(sa.text("ANALYZE"))
                    counts = {table: conn.scalar(sa.text(f"SELECT count(*) FROM {table}")) for table in
                              ("retirement_stats", "retirement_keys", "retirement_months", "retirement_days")}
            rebuilds[scale] = rebuild_seconds
            say(f"{scale:,} completed orders: data {rebuild_started - started:.1f} s, rebuild of {counted:,} orders "
                f"{rebuild_seconds:.1f} s → " + ", ".join(f"{n:,} {table}" for table, n in counts.items()))
            done = scale
            ranges = {"": "", ", 2025": "from=2025-01-01&to=2025-12-31", ", county": "county=101",
                      ", 10 odd days": "from=2025-03-03&to=2025-03-12", ", 3 Mar–20 Nov": "from=2025-03-03&to=2025-11-20"}
            cases = {f"API summary{name}": (f"/api/v1/stats/summary?{query}", auth) for name, query in ranges.items()}
            cases |= {f"bureau page{name}": (f"/bureau/dashboard?{query}", None) for name, query in ranges.items()}
            for label, (path, headers) in cases.items():
                samples, cpu = measure(client, path, headers, options.requests)
                results[(label, scale)] = samples
                cpu_results[(label, scale)] = cpu
                say(f"  {label:<28} p50 {percentile(samples, 50) * 1000:7.1f} ms  "
                    f"p95 {percentile(samples, 95) * 1000:7.1f} ms  cpu p50 {percentile(cpu, 50) * 1000:6.1f} ms  "
                    f"(n={len(samples)})")
    finally:
        with app.app_context():
            db.session.remove()
            db.engine.dispose()
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
        shutil.rmtree(instance, ignore_errors=True)

    say(f"\nresult (Flask test client, in process; PostgreSQL on 127.0.0.1; load average at the end "
        f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)")
    say(f"{'request':<28} {'p50 1k':>9} {'p95 1k':>9} {'p50 1M':>9} {'p95 1M':>9} {'p95 ratio':>10} "
        f"{'cpu p50 1k':>11} {'cpu p50 1M':>11}")
    ok = True
    for label in dict.fromkeys(label for label, _scale in results):
        small, large = results[(label, options.small)], results[(label, options.orders)]
        ratio = percentile(large, 95) / percentile(small, 95)
        ok &= ratio <= 1.5 and percentile(large, 95) <= 0.050
        say(f"{label:<28} {percentile(small, 50) * 1000:8.1f}ms {percentile(small, 95) * 1000:8.1f}ms "
            f"{percentile(large, 50) * 1000:8.1f}ms {percentile(large, 95) * 1000:8.1f}ms {ratio:9.2f}× "
            f"{percentile(cpu_results[(label, options.small)], 50) * 1000:9.1f}ms "
            f"{percentile(cpu_results[(label, options.orders)], 50) * 1000:9.1f}ms")
    say(f"stats rebuild: {rebuilds[options.small]:.1f} s at {options.small:,} orders, "
        f"{rebuilds[options.orders]:.1f} s at {options.orders:,} (target ≤ 30 s)")
    ok &= rebuilds[options.orders] <= 30
    say("target: every request's p95 ≤ 50 ms at the large size and ≤ 1.5× its p95 at the small one; "
        "the rebuild ≤ 30 s — " + ("met" if ok else "NOT met"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
