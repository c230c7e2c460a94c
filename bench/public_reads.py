"""Public pages and public API calls beside a hello-world Flask app, at the demo's size and at a province's.

    .venv/bin/python bench/public_reads.py [--seconds 6] [--connections 32] [--workers 2 --threads 4]
                                           [--projects 10000 --batches-per-project 5 --retirements 1000000]

1. Creates a scratch PostgreSQL database (``--admin-url``, default postgres@127.0.0.1:5432), builds the
   schema (``db.create_all()``, with the triggers the migrations create) and loads the demo
   (``seed_demo``, the same services as ``make run``).
2. Starts two gunicorn servers with the same settings (gthread, ``--workers`` × ``--threads``) on free
   loopback ports: ``bench/hello_app.py`` and the real application (``marketplace.wsgi:app``, TANHUI_ENV=demo,
   its public cache in Redis at ``--redis-url`` under a prefix of this run's own).
3. For each URL (``/``, ``/verify/<number>``, ``/api/v1/public/retirements``, ``/api/v1/listings``,
   ``/registry/``) a warm-up, then wrk with ``--connections`` connections for ``--seconds``; hello-world
   is measured before and after the URLs and its mean is the yardstick. Requests/s, the ratio to
   hello-world and p50/p95 (from wrk's latency histogram, through a small Lua script).
4. In process (Flask test client, cache off): each URL drawn live, 20 times, p50/p95 and SQL statements:
   what one request costs when its cached answer has just been retired by a change.
5. Adds a province-scale registry with bulk SQL (INSERT … SELECT generate_series): 2,000 villages with
   their cooperatives, ``--projects`` verified projects, ``--batches-per-project`` batches each with their
   ledger balances, one listing per project, and ``--retirements`` completed orders with their
   certificates; VACUUM (ANALYZE); then 3. and 4. again.
6. Stops the servers it started (by PID), deletes its cache keys and drops the database.

wrk: /usr/bin/wrk (Debian/Ubuntu: ``apt-get install wrk``; elsewhere build it from its repository's
sources with ``make``); ``--wrk PATH`` for another. Writes bench/results/public_reads.json (not committed).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TANHUI_PASSWORD_HASH_PROFILE", "test")  # the demo's passwords, quickly; nothing measured
os.environ["TANHUI_ENV"] = "demo"

BIN = Path(sys.executable).parent
LUA = """
done = function(summary, latency, requests)
  io.write(string.format("BENCH p50=%d p95=%d non2xx=%d\\n", latency:percentile(50), latency:percentile(95),
           summary.errors.status))
end
"""


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def percentile(samples: list[float], p: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- database ------------------------------------------------------------------------------------

def create_database(admin_url: str) -> tuple[str, str]:
    import psycopg

    name = f"tanhui_bench_public_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return name, admin_url.rsplit("/", 1)[0] + f"/{name}"


def drop_database(admin_url: str, name: str) -> None:
    import psycopg

    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def make_app(database_url: str, instance: Path, **extra):
    from marketplace import create_app

    return create_app({
        "INSTANCE_PATH": str(instance), "SECRET_KEY": "bench", "TESTING": False, "TANHUI_ENV": "development",
        "SQLALCHEMY_DATABASE_URI": "postgresql+psycopg://" + database_url.split("://", 1)[1],
        "CELERY_BROKER_URL": "memory://", "CERT_SIGNING_KEY_FILE": str(instance / "signing_key.pem"),
        "RATELIMIT_STORAGE_URI": "memory://", **extra,
    })


def seed_demo(app) -> str:
    import sqlalchemy as sa

    from marketplace.certificates.models import Certificate
    from marketplace.demo import service as demo
    from marketplace.extensions import db

    with app.app_context():
        db.create_all()
        demo.seed_demo(db.session)
        return db.session.scalar(sa.select(Certificate.number).order_by(Certificate.id))


PROVINCE_SQL = [
    # 200 townships and 2,000 villages under the demo's counties, a cooperative (seller) per village
    """INSERT INTO regions (parent_id, level, name)
       SELECT c.id, 'township', '基准乡' || g FROM generate_series(1, 200) g
       JOIN (SELECT id, row_number() OVER (ORDER BY id) - 1 AS rn, count(*) OVER () AS n FROM regions
             WHERE level = 'county') c ON c.rn = g % c.n""",
    """INSERT INTO regions (parent_id, level, name)
       SELECT t.id, 'village', '基准村' || g FROM generate_series(1, 2000) g
       JOIN (SELECT id, row_number() OVER (ORDER BY id) - 1 AS rn FROM regions WHERE name LIKE '基准乡%') t
       ON t.rn = g % 200""",
    """INSERT INTO organisations (kind, name, credit_code, created_at)
       SELECT 'seller', name || '股份经济合作社', 'BS' || lpad(id::text, 16, '0'), now() FROM regions
       WHERE name LIKE '基准村%'""",
    """CREATE TEMP TABLE bench_villages AS SELECT v.id AS village_id, o.id AS org_id,
       row_number() OVER (ORDER BY v.id) - 1 AS rn FROM regions v
       JOIN organisations o ON o.credit_code = 'BS' || lpad(v.id::text, 16, '0') WHERE v.name LIKE '基准村%'""",
    """INSERT INTO projects (seller_organisation_id, village_id, name, area_hectares, forest_type, methodology,
           crediting_start, crediting_end, description, location, status, review_note, created_at, verified_at)
       SELECT v.org_id, v.village_id, '基准森林经营碳汇项目' || p, 1000, '杉木林', 'CCER-14-001-V01', '2020-01-01',
              '2040-12-31', '', '', 'verified', '', now(), now()
       FROM generate_series(1, :projects) p JOIN bench_villages v ON v.rn = p % 2000""",
    """CREATE TEMP TABLE bench_projects AS SELECT id AS project_id, seller_organisation_id AS org_id,
       row_number() OVER (ORDER BY id) AS rn FROM projects WHERE name LIKE '基准森林经营碳汇项目%'""",
    # batches: 1,000,000 units (100 t) each, serials far above the demo's; 200,000 retired, 100,000 buffer
    """INSERT INTO credit_batches (project_id, vintage_start, vintage_end, quantity_units, buffer_units,
           serial_start, serial_end, next_serial, next_buffer_serial, verification_body, report_reference,
           issued_by_id, issued_at)
       SELECT p.project_id, make_date(2018 + k, 1, 1), make_date(2018 + k, 12, 31), 1000000, 100000,
              s, s + 1000000, s + 200000, s + 900000, '中环联合认证中心', 'BENCH-' || p.rn || '-' || k, :bureau, now()
       FROM bench_projects p CROSS JOIN generate_series(1, :per_project) k
       CROSS JOIN LATERAL (SELECT 100000000000 + (p.rn * 10 + k) * 1000000 AS s) serial""",
    # one listing per project, on its first batch: 300,000 units listed
    """INSERT INTO listings (seller_organisation_id, batch_id, price_cny_per_tonne, min_order_units, status,
           created_at, updated_at)
       SELECT p.org_id, b.id, 30 + (p.rn % 20), 1, 'active', now(), now() FROM bench_projects p
       JOIN credit_batches b ON b.project_id = p.project_id AND extract(year FROM b.vintage_end) = 2019""",
    """INSERT INTO ledger_balances (batch_id, account, units)
       SELECT b.id, a.account, a.units FROM credit_batches b JOIN bench_projects p ON p.project_id = b.project_id
       LEFT JOIN listings l ON l.batch_id = b.id
       CROSS JOIN LATERAL (VALUES ('issuance', -1000000), ('buffer', 100000), ('retired', 200000),
           ('cancelled', 0), ('available', CASE WHEN l.id IS NULL THEN 700000 ELSE 400000 END)) a(account, units)""",
    """INSERT INTO ledger_balances (batch_id, account, units)
       SELECT l.batch_id, a.account, a.units FROM listings l JOIN credit_batches b ON b.id = l.batch_id
       JOIN bench_projects p ON p.project_id = b.project_id
       CROSS JOIN LATERAL (VALUES ('listed:' || l.id, 300000), ('reserved:' || l.id, 0)) a(account, units)""",
    # completed orders of one demo buyer, 1 t each, over two years, each with its certificate
    """INSERT INTO orders (buyer_organisation_id, created_by_id, quantity_units, amount_cny, beneficiary,
           retirement_reason, purpose, payment_method, status, refund_status, created_at, updated_at, paid_at,
           completed_at)
       SELECT :buyer_org, :buyer_user, 10000, 36.00, '基准单位' || (g % 500), '自愿减排', 'voluntary',
              'bank_transfer', 'completed', 'none', t - interval '2 hours', t, t - interval '1 hour', t
       FROM generate_series(1, :retirements) g
       CROSS JOIN LATERAL (SELECT timestamptz '2024-12-01 00:00+08' + (g * 60) * interval '1 second' AS t) moment""",
    """INSERT INTO certificates (number, order_id, buyer_organisation_id, beneficiary, quantity_units, facts_json,
           signature, key_id, issued_at)
       SELECT 'TB-' || lpad(o.id::text, 9, '0'), o.id, o.buyer_organisation_id, o.beneficiary, 10000,
              '{"beneficiary":"' || o.beneficiary || '","buyer":{"name":"基准单位"},"projects":[{"name":'
              || '"基准森林经营碳汇项目","county":"龙泉市","township":"基准乡","village":"基准村","batches":[{"serial_block":'
              || '"TH-B","vintage":"2023","ranges":[[1,10001]]}]}],"purpose":"voluntary","quantity_tonnes":"1.0000",'
              || '"retired_at":"' || to_char(o.completed_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24\\:MI\\:SS') || '+00:00",'
              || '"retirement_reason":"自愿减排"}', 'bench', :key_id, o.completed_at
       FROM orders o WHERE o.beneficiary LIKE '基准单位%'""",
]


def add_province(app, projects: int, per_project: int, retirements: int) -> dict:
    import sqlalchemy as sa

    from marketplace.extensions import db

    with app.app_context():
        bureau = db.session.scalar(sa.text("SELECT u.id FROM users u JOIN organisations o ON o.id = u.organisation_id "
                                           "WHERE o.kind = 'bureau' ORDER BY u.id LIMIT 1"))
        buyer_user, buyer_org = db.session.execute(sa.text(
            "SELECT u.id, o.id FROM users u JOIN organisations o ON o.id = u.organisation_id "
            "WHERE o.kind = 'buyer' ORDER BY u.id LIMIT 1")).one()
        key_id = db.session.scalar(sa.text("SELECT key_id FROM signing_keys ORDER BY created_at LIMIT 1"))
        params = {"projects": projects, "per_project": per_project, "retirements": retirements, "bureau": bureau,
                  "buyer_org": buyer_org, "buyer_user": buyer_user, "key_id": key_id}
        with db.engine.begin() as conn:
            for statement in PROVINCE_SQL:
                names = set(re.findall(r"(?<!:):(\w+)", statement))
                conn.execute(sa.text(statement), {k: v for k, v in params.items() if k in names})
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(sa.text("VACUUM (ANALYZE)"))  # now, not by autovacuum while measuring
            counts = {t: conn.scalar(sa.text(f"SELECT count(*) FROM {t}"))  # noqa: S608 — our table names
                      for t in ("projects", "credit_batches", "listings", "orders", "certificates")}
    return counts


# --- servers ---------------------------------------------------------------------------------------

def start_gunicorn(name: str, app_spec: str, env: dict, args, log_path: Path):
    port = free_port()
    cmd = [str(BIN / "gunicorn"), "--bind", f"127.0.0.1:{port}", "--workers", str(args.workers),
           "--worker-class", "gthread", "--threads", str(args.threads), "--backlog", "2048",
           "--max-requests", "0",  # gunicorn.conf.py recycles workers: an import mid-measurement is not a request
           "--chdir", str(ROOT), "--log-level", "warning", app_spec]
    log(f"{name}: {' '.join(cmd[1:])}")
    proc = subprocess.Popen(cmd, env={**os.environ, **env}, stdout=log_path.open("w"), stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{name} exited ({proc.returncode}); see {log_path}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return proc, port
        except OSError:
            time.sleep(0.2)
    stop(proc)
    raise SystemExit(f"{name} did not start listening within 60 s; see {log_path}")


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()


# --- load ------------------------------------------------------------------------------------------

def fetch(port: int, path: str) -> tuple[int, bytes]:
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    conn.request("GET", path)
    response = conn.getresponse()
    body = response.read()
    conn.close()
    return response.status, body


def wrk(args, lua: Path, port: int, path: str) -> dict:
    out = subprocess.run([args.wrk, "-t2", f"-c{args.connections}", f"-d{args.seconds}s", "--timeout", "10s",
                          "-s", str(lua), f"http://127.0.0.1:{port}{path}"],
                         capture_output=True, text=True, timeout=args.seconds + 60, check=True).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    found = re.search(r"BENCH p50=(\d+) p95=(\d+) non2xx=(\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    return {"rps": rate, "p50_ms": int(found.group(1)) / 1000, "p95_ms": int(found.group(2)) / 1000,
            "non_2xx": int(found.group(3)), "socket_errors": errors.group(1) if errors else "", "wrk": out}


def measure_http(args, lua: Path, hello_port: int, app_port: int, urls: list[str]) -> dict:
    for path in urls:  # warm: each worker's first request, the cache filled
        for _ in range(4):
            status, _body = fetch(app_port, path)
            if status != 200:
                raise SystemExit(f"{path} answered {status}")
    fetch(hello_port, "/")
    before = wrk(args, lua, hello_port, "/")
    log(f"  hello-world        {before['rps']:8.0f} req/s  p95 {before['p95_ms']:.1f} ms")
    rows = {}
    for path in urls:
        rows[path] = wrk(args, lua, app_port, path)
        log(f"  {path:<18.18} {rows[path]['rps']:8.0f} req/s  p95 {rows[path]['p95_ms']:.1f} ms  "
            f"non-2xx {rows[path]['non_2xx']} {rows[path]['socket_errors']}")
    after = wrk(args, lua, hello_port, "/")
    log(f"  hello-world        {after['rps']:8.0f} req/s  p95 {after['p95_ms']:.1f} ms")
    hello = (before["rps"] + after["rps"]) / 2
    for row in rows.values():
        row["ratio"] = row["rps"] / hello
    return {"hello": {"before": before, "after": after, "rps": hello}, "urls": rows}


def measure_in_process(app, urls: list[str], runs: int = 20) -> dict:
    """Each URL drawn live (the cache off): what a request costs right after a change retired its answer."""
    from marketplace.extensions import db
    from tests.lazy_loads import count_queries

    with app.app_context():
        engine = db.engine
    client = app.test_client()
    rows = {}
    for path in urls:
        for _ in range(2):
            assert client.get(path).status_code == 200, path
        with count_queries(engine) as queries:
            client.get(path)
        samples = []
        for _ in range(runs):
            start = time.perf_counter()
            client.get(path)
            samples.append((time.perf_counter() - start) * 1000)
        rows[path] = {"p50_ms": statistics.median(samples), "p95_ms": percentile(samples, 95),
                      "queries": len(queries)}
        log(f"  live {path:<18.18} p50 {rows[path]['p50_ms']:7.1f} ms  p95 {rows[path]['p95_ms']:7.1f} ms  "
            f"{rows[path]['queries']} statements")
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--admin-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--wrk", default=shutil.which("wrk") or "/usr/bin/wrk")
    parser.add_argument("--seconds", type=int, default=6)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--projects", type=int, default=10_000)
    parser.add_argument("--batches-per-project", type=int, default=5)
    parser.add_argument("--retirements", type=int, default=1_000_000)
    parser.add_argument("--keep-db", action="store_true")
    args = parser.parse_args()
    if not (Path(args.wrk).is_file() and os.access(args.wrk, os.X_OK)):
        print(f"wrk not found at {args.wrk}: install it (Debian/Ubuntu: apt-get install wrk; elsewhere build "
              "it from its sources with make) or pass --wrk PATH", file=sys.stderr)
        return 2

    import redis

    work = Path(tempfile.mkdtemp(prefix="tanhui-bench-public-"))
    lua = work / "p95.lua"
    lua.write_text(LUA)
    prefix = f"tanhui-bench-{uuid.uuid4().hex[:8]}:"
    name, url = create_database(args.admin_url)
    log(f"database {name}")
    servers = []
    results: dict = {"settings": vars(args) | {"machine": os.cpu_count()}}
    try:
        app = make_app(url, work / "seed")
        number = seed_demo(app)
        urls = ["/", f"/verify/{number}", "/api/v1/public/retirements", "/api/v1/listings", "/registry/"]
        live_app = make_app(url, work / "seed", PUBLIC_CACHE=False)
        env = {"DATABASE_URL": url, "REDIS_URL": args.redis_url, "CACHE_KEY_PREFIX": prefix,
               "SECRET_KEY": secrets.token_urlsafe(32), "TANHUI_INSTANCE_PATH": str(work / "app"),
               "CERT_SIGNING_KEY_FILE": str(work / "seed" / "signing_key.pem"), "CELERY_BROKER_URL": "memory://",
               "PUBLIC_BASE_URL": "http://127.0.0.1", "PYTHONPATH": str(ROOT)}
        hello = start_gunicorn("hello-world", "bench.hello_app:app", env, args, work / "hello.log")
        servers.append(hello[0])
        real = start_gunicorn("tanhui", "marketplace.wsgi:app", env, args, work / "app.log")
        servers.append(real[0])
        for size in ("demo", "province"):
            if size == "province":
                log(f"province: {args.projects} projects × {args.batches_per_project} batches, "
                    f"{args.retirements} retirements (bulk SQL)")
                started = time.monotonic()
                results["province_rows"] = add_province(app, args.projects, args.batches_per_project, args.retirements)
                log(f"  {results['province_rows']} in {time.monotonic() - started:.0f} s")
            log(f"{size}: over HTTP, {args.connections} connections, {args.seconds} s per URL")
            results[size] = {"http": measure_http(args, lua, hello[1], real[1], urls)}
            log(f"{size}: in process, drawn live")
            results[size]["live"] = measure_in_process(live_app, urls)
    finally:
        for proc in servers:
            stop(proc)
        try:
            client = redis.Redis.from_url(args.redis_url)
            keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
            if keys:
                client.delete(*keys)
        except redis.RedisError:
            pass
        if not args.keep_db:
            drop_database(args.admin_url, name)
            log(f"dropped {name}")
        shutil.rmtree(work, ignore_errors=True)
    summary(results, urls)
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    (out / "public_reads.json").write_text(json.dumps(results, indent=2, ensure_ascii=False))
    return 0


def summary(results: dict, urls: list[str]) -> None:
    demo, province = results["demo"], results["province"]
    print()
    print(f"hello-world: {demo['http']['hello']['rps']:.0f} req/s (demo run), "
          f"{province['http']['hello']['rps']:.0f} req/s (province run)")
    print(f"{'request':<28} {'req/s demo':>10} {'× hello':>8} {'req/s prov':>10} {'× hello':>8} "
          f"{'p95 demo':>9} {'p95 prov':>9} {'p95 ×':>6}")
    for path in urls:
        d, p = demo["http"]["urls"][path], province["http"]["urls"][path]
        print(f"{path[:28]:<28} {d['rps']:10.0f} {d['ratio']:8.2f} {p['rps']:10.0f} {p['ratio']:8.2f} "
              f"{d['p95_ms']:8.1f}ms {p['p95_ms']:8.1f}ms {p['p95_ms'] / d['p95_ms']:6.2f}")
    print()
    print(f"{'drawn live (cache off)':<28} {'p50 demo':>9} {'p95 demo':>9} {'p50 prov':>9} {'p95 prov':>9} {'SQL':>7}")
    for path in urls:
        d, p = demo["live"][path], province["live"][path]
        print(f"{path[:28]:<28} {d['p50_ms']:8.1f}ms {d['p95_ms']:8.1f}ms {p['p50_ms']:8.1f}ms {p['p95_ms']:8.1f}ms "
              f"{d['queries']:>3}/{p['queries']:<3}")


if __name__ == "__main__":
    sys.exit(main())
