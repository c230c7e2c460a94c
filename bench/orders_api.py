"""Order placement through the HTTP API under concurrent clients, beside the same transaction in raw SQL.

    .venv/bin/python bench/orders_api.py [--clients 32] [--orders 4000] [--seconds 40] [--rounds 5] [--workers 4 --threads 8]

1. Creates a scratch PostgreSQL database (``--admin-url``, default postgres@127.0.0.1:5432), builds the
   schema (``db.create_all()``, with the PostgreSQL-only DDL) and seeds, through the real services, one
   verified project, one batch, one listing large enough for every phase, and one buyer organisation +
   user + API token per client.
2. Starts two gunicorn servers with the same settings on free loopback ports: the real application
   (``marketplace.wsgi:app``) and ``bench/raw_reserve_app.py``, which does the same reservation
   transaction in raw SQL with psycopg and nothing else.
3. For each: a warm-up, then ``--clients`` concurrent clients (processes × threads, persistent HTTP/1.1
   connections) place ``--orders`` orders in all, or stop at ``--seconds``, split into ``--rounds``
   rounds (5) that alternate api, raw / raw, api … so load from elsewhere on the machine falls on both.
   Each round's ratio is its api orders/s over its raw orders/s, run back to back; the ratio reported is
   their median. Orders/s is successful orders over the wall time of a round; latencies are per request;
   cpu ms/order is the gunicorn workers' CPU time (from /proc) per order, which other load barely moves.
4. Sell-out: the clients keep ordering through the API until the listing refuses, so the ledger's
   conditional debit is exercised at zero.
5. Checks: oversold = max(0, units reserved − units listed) from the ledger, the orders table against
   the 201s counted, and ``services.ledger.check_invariants``. Exit status 1 if any of them fails.
6. Stops its two servers (by PID) and drops the database (``--keep-db`` keeps it).

Writes the figures as JSON to ``bench/results/orders_api.json`` (not committed).
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing as mp
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
# Seeding makes one password per buyer; argon2id at its test cost keeps that quick. The servers
# never check a password (API tokens are SHA-256 digests), so this changes nothing measured.
os.environ.setdefault("TANHUI_PASSWORD_HASH_PROFILE", "test")
os.environ.setdefault("TANHUI_ENV", "development")  # as `make bench-orders` runs it (the servers run as demo)

BIN = Path(sys.executable).parent
ORDER_TONNES = Decimal("1.0000")


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def percentile(samples: list[float], p: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- database ----------------------------------------------------------------------------------

def create_database(admin_url: str) -> tuple[str, str]:
    import psycopg

    name = f"tanhui_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = admin_url.rsplit("/", 1)[0]
    return name, f"{base}/{name}"


def drop_database(admin_url: str, name: str) -> None:
    import psycopg

    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def make_app(database_url: str, instance: Path):
    from marketplace import create_app

    return create_app({
        "INSTANCE_PATH": str(instance), "SECRET_KEY": "bench", "TESTING": False,
        "SQLALCHEMY_DATABASE_URI": "postgresql+psycopg://" + database_url.split("://", 1)[1],
        "CELERY_BROKER_URL": "memory://", "CERT_SIGNING_KEY_FILE": str(instance / "signing_key.pem"),
    })


def seed(app, clients: int, listing_tonnes: Decimal) -> dict:
    """Schema, one listing of ``listing_tonnes``, and one buyer (organisation, user, token) per client."""
    from marketplace.extensions import db
    from tests.factories import Factory

    with app.app_context():
        db.create_all()
    factory = Factory(app)
    bureau = factory.user("bureau")
    project = factory.project(bureau=bureau)
    batch_tonnes = (listing_tonnes * Decimal("1.2")).quantize(Decimal("1"))  # 10 % goes to the buffer pool
    batch = factory.batch(project, tonnes=str(batch_tonnes), bureau=bureau)
    listing = factory.listing(batch, tonnes=str(listing_tonnes), price="36.00")
    buyers = []
    for _ in range(clients):
        user = factory.user("buyer")
        buyers.append({"user_id": user.id, "organisation_id": user.organisation_id, "token": factory.token(user)})
    return {"listing_id": listing.id, "batch_id": batch.id, "price": str(listing.price_cny_per_tonne),
            "buyers": buyers}


# --- servers -----------------------------------------------------------------------------------

def start_gunicorn(name: str, app_spec: str, env: dict, args, chdir: Path, log_path: Path):
    port = free_port()
    cmd = [str(BIN / "gunicorn"), "--bind", f"127.0.0.1:{port}", "--workers", str(args.workers),
           "--worker-class", args.worker_class, "--threads", str(args.threads), "--backlog", "2048",
           "--keep-alive", "5", "--chdir", str(chdir), "--log-level", "warning", app_spec]
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
    """Stop one server we started, by its PID (gunicorn's arbiter stops its own workers)."""
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()


def server_cpu_seconds(proc: subprocess.Popen) -> float:
    """User + system CPU seconds of a gunicorn arbiter's worker processes so far (from /proc)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    try:
        children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
    except OSError:
        return 0.0
    for pid in children:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / ticks  # utime, stime
    return total


# --- load ----------------------------------------------------------------------------------------

def _client_thread(port, path, headers_of, body_of, quota, deadline, counter, out, stop_on_refusal):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    latencies, statuses, first, last, errors = [], {}, None, None, []
    done = 0
    while done < quota and time.monotonic() < deadline:
        body = json.dumps(body_of()).encode()
        t0 = time.monotonic()
        try:
            conn.request("POST", path, body=body, headers=headers_of())
            response = conn.getresponse()
            payload = response.read()
            status = response.status
        except (OSError, http.client.HTTPException) as exc:
            errors.append(repr(exc))
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            if len(errors) > 20:
                break
            continue
        t1 = time.monotonic()
        first = t0 if first is None else first
        last = t1
        statuses[status] = statuses.get(status, 0) + 1
        if status == 201:
            latencies.append(t1 - t0)
            done += 1
            with counter.get_lock():
                counter.value += 1
        else:
            if len(errors) < 5:
                errors.append(f"{status} {payload[:300]!r}")
            if stop_on_refusal and status == 409:
                break
            if not stop_on_refusal:
                done += 1  # a failure still uses up the quota: the run stays bounded
    conn.close()
    out.append({"latencies": latencies, "statuses": statuses, "first": first, "last": last, "errors": errors})


def client_process(spec: dict, counter, start, results) -> None:
    """One load process: a thread per client, each with its own keep-alive connection."""
    threads, out = [], []
    start.wait()
    deadline = time.monotonic() + spec["seconds"]
    for client in spec["clients"]:
        def headers_of(client=client):
            headers = {"Content-Type": "application/json", "Connection": "keep-alive"}
            if spec["kind"] == "api":
                headers["Authorization"] = f"Bearer {client['token']}"
                if spec["idempotency_key"]:
                    headers["Idempotency-Key"] = uuid.uuid4().hex
            return headers

        def body_of(client=client):
            body = {"quantity_tonnes": spec["tonnes"], "listing_id": spec["listing_id"], "payment_method": "card",
                    "beneficiary": "基准测试受益方", "retirement_reason": "下单基准测试"}
            if spec["kind"] == "raw":
                body.update(batch_id=spec["batch_id"], price_cny_per_tonne=spec["price"],
                            organisation_id=client["organisation_id"], user_id=client["user_id"])
            return body

        t = threading.Thread(target=_client_thread, args=(
            spec["port"], spec["path"], headers_of, body_of, client["quota"], deadline, counter, out,
            spec["stop_on_refusal"]))
        t.start()
        threads.append(t)
    for t in threads:
        t.join()
    results.put(out)


def drive(kind: str, port: int, setup: dict, args, *, orders: int, seconds: float, tonnes: Decimal,
          label: str, stop_on_refusal: bool = False) -> dict:
    """Run ``orders`` orders (or ``seconds``) from ``args.clients`` clients; returns the figures."""
    ctx = mp.get_context("spawn")
    counter, start, results = ctx.Value("q", 0), ctx.Event(), ctx.Queue()
    buyers = setup["buyers"]
    per_client = [orders // args.clients + (1 if i < orders % args.clients else 0) for i in range(args.clients)]
    procs = []
    for p in range(args.client_procs):
        clients = [{**buyers[i], "quota": per_client[i]} for i in range(p, args.clients, args.client_procs)]
        spec = {"kind": kind, "port": port, "path": "/api/v1/orders" if kind == "api" else "/reserve",
                "clients": clients, "seconds": seconds, "tonnes": f"{tonnes:.4f}", "listing_id": setup["listing_id"],
                "batch_id": setup["batch_id"], "price": setup["price"], "idempotency_key": args.idempotency_key,
                "stop_on_refusal": stop_on_refusal}
        proc = ctx.Process(target=client_process, args=(spec, counter, start, results), daemon=True)
        proc.start()
        procs.append(proc)
    time.sleep(0.5)  # let the client processes import and reach the start line
    start.set()
    started, outs, last_print = time.monotonic(), [], 0.0
    while len(outs) < len(procs):
        try:
            outs.append(results.get(timeout=0.25))
        except Exception:  # noqa: BLE001 — queue.Empty: no process has finished yet
            pass
        now = time.monotonic()
        if now - last_print >= 2:
            done = counter.value
            log(f"  {label}: {done} orders, {done / (now - started):.0f}/s")
            last_print = now
        if now - started > seconds + 120:
            raise SystemExit(f"{label}: the clients did not finish")
    for proc in procs:
        proc.join()
    threads = [t for out in outs for t in out]
    latencies = [x for t in threads for x in t["latencies"]]
    statuses: dict[int, int] = {}
    for t in threads:
        for status, n in t["statuses"].items():
            statuses[status] = statuses.get(status, 0) + n
    firsts = [t["first"] for t in threads if t["first"] is not None]
    lasts = [t["last"] for t in threads if t["last"] is not None]
    wall = (max(lasts) - min(firsts)) if firsts else 0.0
    errors = [e for t in threads for e in t["errors"]][:5]
    figures = {"latencies": latencies, "orders": len(latencies), "wall_s": round(wall, 3),
               "orders_per_s": round(len(latencies) / wall, 1) if wall else 0.0,
               "p50_ms": round(percentile(latencies, 50) * 1000, 1) if latencies else None,
               "p95_ms": round(percentile(latencies, 95) * 1000, 1) if latencies else None,
               "mean_ms": round(statistics.fmean(latencies) * 1000, 1) if latencies else None,
               "statuses": statuses, "errors": errors}
    log(f"  {label}: {figures['orders']} orders in {figures['wall_s']} s = {figures['orders_per_s']}/s, "
        f"p50 {figures['p50_ms']} ms, p95 {figures['p95_ms']} ms, statuses {statuses}")
    for e in errors:
        log(f"    e.g. {e}")
    return figures


def combine(results: list[dict]) -> dict:
    """Several rounds of one side as one: orders over summed wall time, pooled latencies."""
    latencies = [x for r in results for x in r["latencies"]]
    wall = sum(r["wall_s"] for r in results)
    cpu = sum(r["server_cpu_s"] for r in results)
    statuses: dict[int, int] = {}
    for r in results:
        for status, n in r["statuses"].items():
            statuses[status] = statuses.get(status, 0) + n
    return {"orders": len(latencies), "wall_s": round(wall, 3),
            "orders_per_s": round(len(latencies) / wall, 1) if wall else 0.0,
            "p50_ms": round(percentile(latencies, 50) * 1000, 1) if latencies else None,
            "p95_ms": round(percentile(latencies, 95) * 1000, 1) if latencies else None,
            "server_cpu_ms_per_order": round(cpu / len(latencies) * 1000, 2) if latencies else None,
            "rounds_orders_per_s": [r["orders_per_s"] for r in results], "statuses": statuses}


# --- checks ------------------------------------------------------------------------------------

def verify(app, setup: dict, created: int) -> dict:
    """Oversold from the ledger, the orders table against the 201s, and the ledger's invariants."""
    import sqlalchemy as sa

    from marketplace.extensions import db
    from marketplace.orders.models import Order, OrderLine
    from marketplace.registry.ledger import check_invariants
    from marketplace.registry.models import LedgerBalance, LedgerEntry

    listing_id, batch_id = setup["listing_id"], setup["batch_id"]
    listed_account, reserved_account = f"listed:{listing_id}", f"reserved:{listing_id}"
    with app.app_context():
        s = db.session

        def moved(to_account=None, from_account=None):
            stmt = sa.select(sa.func.coalesce(sa.func.sum(LedgerEntry.units), 0)).where(LedgerEntry.batch_id == batch_id)
            if to_account:
                stmt = stmt.where(LedgerEntry.to_account == to_account)
            if from_account:
                stmt = stmt.where(LedgerEntry.from_account == from_account)
            return int(s.scalar(stmt))

        units_listed = moved(to_account=listed_account) - moved(from_account=listed_account, to_account="available")
        units_sold = moved(to_account=reserved_account) - moved(from_account=reserved_account)
        balances = dict(s.execute(sa.select(LedgerBalance.account, LedgerBalance.units).where(
            LedgerBalance.batch_id == batch_id, LedgerBalance.account.in_([listed_account, reserved_account]))).all())
        order_rows = s.scalar(sa.select(sa.func.count()).select_from(Order))
        line_units = int(s.scalar(sa.select(sa.func.coalesce(sa.func.sum(OrderLine.units), 0))
                                  .where(OrderLine.listing_id == listing_id)))
        report = check_invariants(s)
    result = {
        "units_listed": units_listed, "units_sold": units_sold, "oversold_units": max(0, units_sold - units_listed),
        "listed_balance": balances.get(listed_account), "reserved_balance": balances.get(reserved_account),
        "orders_in_db": order_rows, "orders_acknowledged": created, "order_line_units": line_units,
        "ledger_check_ok": report.ok, "ledger_problems": report.problems[:10],
        "ledger_entries": report.entries,
    }
    result["ok"] = (result["oversold_units"] == 0 and report.ok and order_rows == created
                    and line_units == units_sold == balances.get(reserved_account)
                    and balances.get(listed_account, -1) >= 0)
    return result


# --- main ----------------------------------------------------------------------------------------

def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--orders", type=int, default=4000, help="orders per endpoint (measured)")
    parser.add_argument("--seconds", type=float, default=40, help="time cap per endpoint, all rounds together")
    parser.add_argument("--warmup", type=int, default=300, help="orders per endpoint before measuring")
    parser.add_argument("--rounds", type=int, default=5, help="alternating api/raw rounds sharing --orders/--seconds; "
                                                              "the ratio reported is the median of the rounds'")
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--worker-class", default="gthread")
    parser.add_argument("--client-procs", type=int, default=2, help="load-generator processes (threads split)")
    parser.add_argument("--no-idempotency-key", dest="idempotency_key", action="store_false",
                        help="API requests without an Idempotency-Key header (default: a fresh key each)")
    parser.add_argument("--sellout-orders", type=int, default=300, help="about this many orders empty the listing")
    parser.add_argument("--admin-url", default=os.environ.get("BENCH_POSTGRES_URL",
                                                              "postgresql://postgres@127.0.0.1:5432/postgres"))
    parser.add_argument("--keep-db", action="store_true")
    parser.add_argument("--json", default=str(ROOT / "bench" / "results" / "orders_api.json"))
    args = parser.parse_args()

    log(f"machine: {os.cpu_count()} CPUs, {platform.python_implementation()} {platform.python_version()}, "
        f"{args.clients} clients in {args.client_procs} processes")
    db_name, database_url = create_database(args.admin_url)
    log(f"scratch database {db_name}")
    servers, figures = [], {}
    tmp = tempfile.TemporaryDirectory(prefix="tanhui-bench-")
    instance = Path(tmp.name)
    try:
        # Every measured order and the warm-ups fit; the sell-out takes what is left.
        measured_tonnes = ORDER_TONNES * (2 * (args.orders + args.warmup))
        listing_tonnes = measured_tonnes + ORDER_TONNES * args.sellout_orders
        app = make_app(database_url, instance)
        t0 = time.monotonic()
        setup = seed(app, args.clients, listing_tonnes)
        log(f"seeded listing {setup['listing_id']} ({listing_tonnes} t) and {args.clients} buyers with tokens "
            f"in {time.monotonic() - t0:.1f} s")

        server_env = {"DATABASE_URL": "postgresql+psycopg://" + database_url.split("://", 1)[1],
                      "RAW_RESERVE_DATABASE_URL": database_url, "SECRET_KEY": "bench", "TANHUI_ENV": "demo",
                      "CELERY_BROKER_URL": "memory://", "REDIS_URL": "", "PUBLIC_BASE_URL": "http://127.0.0.1:5000",
                      "CERT_SIGNING_KEY_FILE": str(instance / "signing_key.pem")}
        api, api_port = start_gunicorn("api", "marketplace.wsgi:app", server_env, args, ROOT, instance / "api.log")
        servers.append(api)
        raw, raw_port = start_gunicorn("raw", "raw_reserve_app:app", server_env, args, ROOT / "bench",
                                       instance / "raw.log")
        servers.append(raw)

        created = 0
        targets = {"api": (api, api_port), "raw": (raw, raw_port)}
        for kind, (_proc, port) in targets.items():
            log(f"{kind}: warm-up, {args.warmup} orders")
            warm = drive(kind, port, setup, args, orders=args.warmup, seconds=args.seconds, tonnes=ORDER_TONNES,
                         label=f"{kind} warm-up")
            created += warm["orders"]
        # Alternate rounds, so that whatever else the machine does falls on both sides alike: api then raw
        # in odd rounds, raw then api in even ones (a drift in the machine's load favours neither side).
        rounds: dict[str, list[dict]] = {"api": [], "raw": []}
        for n in range(1, args.rounds + 1):
            for kind in (("api", "raw") if n % 2 else ("raw", "api")):
                proc, port = targets[kind]
                log(f"{kind}: round {n}/{args.rounds}, {args.orders // args.rounds} orders from {args.clients} "
                    f"clients (at most {args.seconds / args.rounds:.0f} s); load average {os.getloadavg()[0]:.1f}")
                cpu0 = server_cpu_seconds(proc)
                result = drive(kind, port, setup, args, orders=args.orders // args.rounds,
                               seconds=args.seconds / args.rounds, tonnes=ORDER_TONNES, label=f"{kind} r{n}")
                result["server_cpu_s"] = server_cpu_seconds(proc) - cpu0
                rounds[kind].append(result)
                created += result["orders"]
        for kind, results in rounds.items():
            figures[kind] = combine(results)
        # Each round's ratio (its api side over its raw side, run back to back) and their median.
        figures["round_ratios"] = [round(a["orders_per_s"] / r["orders_per_s"], 3) if r["orders_per_s"] else 0.0
                                   for a, r in zip(rounds["api"], rounds["raw"], strict=True)]
        figures["round_cpu"] = [{kind: round(rounds[kind][i]["server_cpu_s"] / rounds[kind][i]["orders"] * 1000, 2)
                                 if rounds[kind][i]["orders"] else None for kind in ("api", "raw")}
                                for i in range(args.rounds)]

        # Sell-out through the API: an order size that does not divide what is left, so the last
        # orders ask for more than remains and must be refused.
        with app.app_context():
            from marketplace.extensions import db
            from marketplace.registry.ledger import listing_available_units

            left = listing_available_units(db.session, setup["listing_id"])
        size_units = left // args.sellout_orders + 7
        log(f"sell-out: {left} units left, orders of {size_units} units until the listing refuses")
        sellout = drive("api", api_port, setup, args, orders=10 * args.sellout_orders, seconds=60,
                        tonnes=Decimal(size_units) / 10_000, label="sell-out", stop_on_refusal=True)
        created += sellout["orders"]
        sellout.pop("latencies")
        figures["sellout"] = sellout
    finally:
        for proc in servers:
            stop(proc)
        if servers:
            log(f"stopped gunicorn PIDs {', '.join(str(p.pid) for p in servers)}")

    try:
        check = verify(app, setup, created)
        with app.app_context():
            from marketplace.extensions import db

            db.engine.dispose()
    finally:
        if args.keep_db:
            log(f"kept database {db_name}")
        else:
            drop_database(args.admin_url, db_name)
            log(f"dropped {db_name}")
        tmp.cleanup()

    ratio = figures["api"]["orders_per_s"] / figures["raw"]["orders_per_s"] if figures["raw"]["orders_per_s"] else 0
    median_ratio = statistics.median(figures["round_ratios"])
    summary = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "config": {"workers": args.workers, "threads": args.threads, "worker_class": args.worker_class,
                   "clients": args.clients, "client_procs": args.client_procs, "orders": args.orders,
                   "seconds": args.seconds, "warmup": args.warmup, "rounds": args.rounds, "idempotency_key": args.idempotency_key},
        "api": figures["api"], "raw": figures["raw"], "ratio": round(ratio, 3),
        "round_ratios": figures["round_ratios"], "median_round_ratio": round(median_ratio, 3),
        "round_cpu_ms_per_order": figures["round_cpu"], "sellout": figures["sellout"],
        "check": check, "load_average_after": os.getloadavg(),
    }
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(summary, indent=2, ensure_ascii=False))

    print()
    print(f"{'':6}{'orders/s':>10}{'p50 ms':>9}{'p95 ms':>9}{'orders':>8}{'cpu ms/order':>14}   rounds (orders/s)")
    for kind in ("api", "raw"):
        f = figures[kind]
        print(f"{kind:6}{f['orders_per_s']:>10}{f['p50_ms']:>9}{f['p95_ms']:>9}{f['orders']:>8}"
              f"{f['server_cpu_ms_per_order']:>14}   {f['rounds_orders_per_s']}")
    print(f"load average after: {' '.join(f'{x:.1f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs "
          f"(cpu ms/order: the gunicorn workers' CPU time per order, PostgreSQL's not included)")
    print("rounds (api/raw orders/s, cpu ms/order): " + "; ".join(
        f"{n}: {a}/{r} = {x:.2f} ({c['api']}/{c['raw']})" for n, (a, r, x, c) in enumerate(zip(
            figures["api"]["rounds_orders_per_s"], figures["raw"]["rounds_orders_per_s"], figures["round_ratios"],
            figures["round_cpu"], strict=True), 1)))
    print(f"ratio api/raw: median of the {args.rounds} rounds {median_ratio:.2f} (target ≥ 0.75); "
          f"all rounds pooled {ratio:.2f}")
    print(f"sell-out: {sellout['orders']} orders, statuses {sellout['statuses']}; listed {check['units_listed']} "
          f"units, sold {check['units_sold']}, left {check['listed_balance']}")
    print(f"oversold: {check['oversold_units']} units; orders in db {check['orders_in_db']} = acknowledged "
          f"{check['orders_acknowledged']}: {check['orders_in_db'] == check['orders_acknowledged']}; "
          f"ledger check: {'ok' if check['ledger_check_ok'] else check['ledger_problems']}")
    print(f"figures written to {args.json}")
    return 0 if check["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
