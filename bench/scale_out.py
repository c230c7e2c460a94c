"""Scale-out proof: two web servers and two Celery workers as separate processes, one PostgreSQL, one Redis.

    .venv/bin/python bench/scale_out.py [--orders 600] [--certificates 100] [--clients 16]   (make bench-scale-out)

As docker compose would run them on separate hosts, on this one machine: every process has its own port or
its own instance folder, and they share only PostgreSQL, Redis and the signing key (a mounted secret).

1. A scratch PostgreSQL database (``--admin-url``), the schema (``db.create_all()``), the demo's data
   (``demo.seed_demo``: its projects, listings, buyers, bureau and five certificates), and a bearer token for
   each demo buyer and for the bureau.
2. Two gunicorn servers (``marketplace.wsgi:app``, 2 workers × 4 threads each, as the Procfile's web) on two
   ports, and two Celery workers (``--pool=solo``: one process each) on one Redis queue of their own.
3. Orders: ``--clients`` clients (2 processes × threads), each with a keep-alive connection to each server,
   send ``POST /api/v1/orders`` (bank transfer, a fresh Idempotency-Key) alternately to server A and server B:
   after a warm-up, 2 clients on the demo's biggest listing ("light": the web processes have CPU to spare),
   then every client on it ("hot": its balance row is the hot row), then spread over every listing on sale.
   A refusal uses up a client's quota too, so the run stays bounded.
4. Certificates: the bureau confirms ``--certificates`` of those transfers through
   ``POST /api/v1/orders/<id>/confirm-bank-transfer``, again alternating the servers; the commits publish
   the retirements through the outbox and both workers take them from the queue. We wait until every
   confirmed order is completed.
5. Meanwhile a probe samples PostgreSQL every ``--sample-ms``: whether the hot listing's ``listed:`` balance
   row and the year's certificate counter row are locked at that moment (``FOR UPDATE SKIP LOCKED`` in a
   one-statement transaction), and what each of our backends waits for (``pg_stat_activity``). From those:
   the fraction of time each row is held, so the time it is held per order or per certificate (the most
   orders/s one listing, and certificates/s the counter, can take), and where the backends' time goes.
   Commits per second come from ``pg_stat_database``; CPU per order and per certificate of every process
   (web workers, Celery workers, our PostgreSQL backends) from ``/proc``. A short separate phase measures
   how many plain commits per second this PostgreSQL takes from 8 connections (the commit ceiling here).
6. Checks: ``python -m marketplace.cli ledger check`` against the scratch database (every unit retired
   once, the journal replays to the balances); no two retired serial ranges of a batch overlap and every
   completed order's ranges add up to its units; the year's certificate numbers are 1…n without a gap or a
   repeat, one per completed order; which worker drew how many (from their logs); orders in the database =
   orders acknowledged. Exit status 1 if a check fails.
7. Stops the four processes by PID and drops the database (``--keep-db`` keeps it). Figures are written to
   ``bench/results/scale_out.json`` (not committed).
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing as mp
import os
import platform
import re
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
os.environ.setdefault("TANHUI_PASSWORD_HASH_PROFILE", "test")
os.environ.setdefault("TANHUI_ENV", "development")

from orders_api import (  # noqa: E402
    BIN,
    create_database,
    drop_database,
    free_port,
    log,
    make_app,
    percentile,
    server_cpu_seconds,
    stop,
)

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
CERT_LINE = re.compile(r"tanhui\.generate_certificate\[[^\]]+\] succeeded in [\d.]+s: '(TH-\d{4}-\d{6})'")


# --- data ----------------------------------------------------------------------------------------

def seed(app) -> dict:
    """The demo's data, and a token per demo buyer and for the bureau."""
    import sqlalchemy as sa

    from marketplace.accounts import service as accounts
    from marketplace.accounts.models import Organisation, User
    from marketplace.demo import service as demo
    from marketplace.extensions import db
    from marketplace.registry.models import LedgerBalance, Listing

    with app.app_context():
        s = db.session
        db.create_all()
        demo.seed_demo(s)
        s.commit()
        people = s.execute(sa.select(User.id, Organisation.kind).join(Organisation, Organisation.id == User.organisation_id)
                           .where(Organisation.kind.in_(["buyer", "bureau"]), User.active.is_(True))
                           .order_by(User.id)).all()
        tokens = {"buyer": [], "bureau": []}
        for user_id, kind in people:
            tokens[kind].append(accounts.create_api_token(s, user_id, "scale-out bench"))
        s.commit()
        listings = s.execute(sa.select(Listing.id, Listing.batch_id, LedgerBalance.units, Listing.min_order_units)
                             .join(LedgerBalance, LedgerBalance.account == sa.func.concat("listed:", Listing.id))
                             .where(LedgerBalance.units > 0).order_by(LedgerBalance.units.desc())).all()
    return {"buyer_tokens": tokens["buyer"], "bureau_token": tokens["bureau"][0],
            "listings": [{"id": lid, "batch_id": bid, "units": units, "min_units": min_units}
                         for lid, bid, units, min_units in listings]}


# --- processes -----------------------------------------------------------------------------------

def wait_until_ready(proc, port: int, name: str, log_path: Path) -> None:
    """Until ``/healthz`` answers 200 several times in a row (every worker process has booted the app)."""
    deadline, good = time.monotonic() + 120, 0
    while time.monotonic() < deadline and good < 6:
        if proc.poll() is not None:
            raise SystemExit(f"{name} exited ({proc.returncode}); see {log_path}: {log_path.read_text()[-2000:]}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            conn.request("GET", "/healthz")
            good = good + 1 if conn.getresponse().status == 200 else 0
            conn.close()
        except (OSError, http.client.HTTPException):
            good = 0
            time.sleep(0.3)
    if good < 6:
        raise SystemExit(f"{name} was not ready within 120 s; see {log_path}")


def start_web(name: str, env: dict, folder: Path):
    port = free_port()
    cmd = [str(BIN / "gunicorn"), "--bind", f"127.0.0.1:{port}", "--workers", "2", "--threads", "4",
           "--worker-class", "gthread", "--chdir", str(ROOT), "--log-level", "warning", "marketplace.wsgi:app"]
    log_path = folder / f"{name}.log"
    proc = subprocess.Popen(cmd, env={**os.environ, **env, "TANHUI_INSTANCE_PATH": str(folder / name),
                                      "UPLOAD_FOLDER": str(folder / name / "uploads")},
                            stdout=log_path.open("w"), stderr=subprocess.STDOUT)
    log(f"{name}: pid {proc.pid}, gunicorn 2 workers × 4 threads on 127.0.0.1:{port}")
    return proc, port, log_path


def start_worker(name: str, env: dict, folder: Path, queue: str):
    log_path = folder / f"{name}.log"
    cmd = [sys.executable, "-m", "celery", "-A", "workers.celery_app", "worker", "--pool=solo", "-Q", queue,
           "-n", f"{name}@scale-out", "--without-heartbeat", "--without-gossip", "--without-mingle",
           "--loglevel=INFO"]
    proc = subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, **env, "TANHUI_INSTANCE_PATH": str(folder / name),
                                               "UPLOAD_FOLDER": str(folder / name / "uploads")},
                            stdout=log_path.open("w"), stderr=subprocess.STDOUT)
    log(f"{name}: pid {proc.pid}, celery worker --pool=solo on queue {queue}")
    return proc, log_path


def process_cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# --- load ------------------------------------------------------------------------------------------

def _order_thread(ports, token, bodies, quota, deadline, out):
    """One client: keep-alive connections to both servers, requests alternating between them."""
    conns = [http.client.HTTPConnection("127.0.0.1", port, timeout=60) for port in ports]
    latencies, statuses, ids, errors, per_server = [], {}, [], [], [0] * len(ports)
    n = 0
    while len(ids) + len(errors) < quota and time.monotonic() < deadline:  # a refusal uses up quota too
        which = n % len(conns)
        n += 1
        body = json.dumps(bodies[n % len(bodies)]).encode()
        headers = {"Content-Type": "application/json", "Authorization": f"Bearer {token}",
                   "Idempotency-Key": uuid.uuid4().hex}
        t0 = time.monotonic()
        try:
            conns[which].request("POST", "/api/v1/orders", body=body, headers=headers)
            response = conns[which].getresponse()
            payload = response.read()
        except (OSError, http.client.HTTPException) as exc:
            errors.append(repr(exc))
            conns[which].close()
            conns[which] = http.client.HTTPConnection("127.0.0.1", ports[which], timeout=60)
            if len(errors) > 20:
                break
            continue
        statuses[response.status] = statuses.get(response.status, 0) + 1
        if response.status == 201:
            latencies.append(time.monotonic() - t0)
            ids.append(json.loads(payload)["id"])
            per_server[which] += 1
        else:
            errors.append(f"{response.status} {payload[:200]!r}")
            if response.status == 409:
                break
    for conn in conns:
        conn.close()
    out.append({"latencies": latencies, "statuses": statuses, "ids": ids, "errors": errors,
                "per_server": per_server})


def order_process(spec, start, results) -> None:
    out, threads = [], []
    start.wait()
    deadline = time.monotonic() + spec["seconds"]
    for client in spec["clients"]:
        t = threading.Thread(target=_order_thread, args=(spec["ports"], client["token"], spec["bodies"],
                                                         client["quota"], deadline, out))
        t.start()
        threads.append(t)
    for t in threads:
        t.join()
    results.put(out)


def place_orders(ports, setup, clients: int, *, orders: int, listing_ids: list[int], tonnes: str, label: str) -> dict:
    ctx = mp.get_context("spawn")
    start, results = ctx.Event(), ctx.Queue()
    tokens = setup["buyer_tokens"]
    quotas = [orders // clients + (1 if i < orders % clients else 0) for i in range(clients)]
    bodies = [{"quantity_tonnes": tonnes, "listing_id": lid, "payment_method": "bank_transfer",
               "beneficiary": "扩展性基准受益方", "retirement_reason": "扩展性基准测试"} for lid in listing_ids]
    procs = []
    for p in range(2):
        mine = [{"token": tokens[i % len(tokens)], "quota": quotas[i]} for i in range(p, clients, 2)]
        # The second process starts on server B, so every moment has requests on both.
        spec = {"ports": ports if p == 0 else ports[::-1], "clients": mine, "bodies": bodies, "seconds": 90}
        proc = ctx.Process(target=order_process, args=(spec, start, results), daemon=True)
        proc.start()
        procs.append(proc)
    time.sleep(0.5)
    t0 = time.monotonic()
    start.set()
    outs = [results.get(timeout=150) for _ in procs]
    wall = time.monotonic() - t0
    for proc in procs:
        proc.join()
    threads = [t for out in outs for t in out]
    latencies = [x for t in threads for x in t["latencies"]]
    statuses: dict[int, int] = {}
    for t in threads:
        for status, n in t["statuses"].items():
            statuses[status] = statuses.get(status, 0) + n
    per_server = [0, 0]  # a thread counts by its own port order; the second process has B first
    for p, out in enumerate(outs):
        for t in out:
            for i, n in enumerate(t["per_server"]):
                per_server[i if p == 0 else 1 - i] += n
    if not latencies:
        raise SystemExit(f"{label}: no order was placed; {statuses}; {[e for t in threads for e in t['errors']][:5]}")
    figures = {"orders": len(latencies), "wall_s": round(wall, 2), "orders_per_s": round(len(latencies) / wall, 1),
               "p50_ms": round(percentile(latencies, 50) * 1000, 1), "p95_ms": round(percentile(latencies, 95) * 1000, 1),
               "statuses": statuses, "per_server": per_server, "errors": [e for t in threads for e in t["errors"]][:5],
               "refused": sum(len(t["errors"]) for t in threads),
               "ids": sorted(i for t in threads for i in t["ids"])}
    log(f"  {label}: {figures['orders']} orders in {figures['wall_s']} s = {figures['orders_per_s']}/s "
        f"(server A {per_server[0]}, B {per_server[1]}), p50 {figures['p50_ms']} ms, p95 {figures['p95_ms']} ms, "
        f"statuses {statuses}")
    for e in figures["errors"]:
        log(f"    e.g. {e}")
    return figures


def confirm_transfers(ports, token: str, order_ids: list[int], threads: int = 4) -> dict:
    """The bureau confirms each transfer through the API, alternating the servers."""
    chunks = [order_ids[i::threads] for i in range(threads)]
    statuses: dict[int, int] = {}
    lock = threading.Lock()

    def run(chunk, offset):
        conns = [http.client.HTTPConnection("127.0.0.1", port, timeout=60) for port in ports]
        for n, order_id in enumerate(chunk):
            conn = conns[(n + offset) % len(conns)]
            conn.request("POST", f"/api/v1/orders/{order_id}/confirm-bank-transfer",
                         body=json.dumps({"reference": f"BANK-{order_id}"}).encode(),
                         headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"})
            response = conn.getresponse()
            response.read()
            with lock:
                statuses[response.status] = statuses.get(response.status, 0) + 1
        for conn in conns:
            conn.close()

    workers = [threading.Thread(target=run, args=(chunk, i)) for i, chunk in enumerate(chunks)]
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    return statuses


# --- PostgreSQL probe ------------------------------------------------------------------------------

PROBE_SQL = """
SELECT
  (SELECT count(*) FROM (SELECT 1 FROM ledger_balances WHERE batch_id = %(batch)s AND account = %(account)s
                         FOR UPDATE SKIP LOCKED) hot),
  (SELECT count(*) FROM (SELECT 1 FROM certificate_counters WHERE year = %(year)s FOR UPDATE SKIP LOCKED) counter),
  (SELECT coalesce(json_agg(json_build_array(state, wait_event_type, wait_event, left(query, 200))), '[]'::json)
     FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()
       AND backend_type = 'client backend')
"""


def classify(state, wait_type, wait_event, query) -> str | None:
    query = (query or "").lower()
    if wait_type == "Lock":
        if "ledger_balances" in query:
            return "waiting for a listing's balance row lock"
        if "certificate_counters" in query:
            return "waiting for the certificate counter row"
        return "waiting for another lock"
    if wait_event and wait_event.startswith("WAL") or (wait_type == "IO" and "WAL" in (wait_event or "")):
        return "committing: WAL write / flush"
    if wait_type == "LWLock":
        return f"LWLock {wait_event}"
    if state == "active" and wait_type is None:
        return "running a statement (PostgreSQL CPU)"
    if state == "active":
        return f"active, waiting on {wait_type}:{wait_event}"
    if state in ("idle in transaction", "idle in transaction (aborted)"):
        return "in a transaction, waiting for its client"
    return None  # idle between requests


class Probe:
    def __init__(self, database_url: str, batch_id: int, listing_id: int, year: int, period: float):
        self.url, self.period = database_url, period
        self.params = {"batch": batch_id, "account": f"listed:{listing_id}", "year": year}
        self.running, self.thread = False, None
        self.reset()

    def reset(self):
        self.samples = 0
        self.hot_locked = 0
        self.counter_locked = 0
        self.states: dict[str, int] = {}

    def start(self):
        self.reset()
        self.running = True
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def stop(self) -> dict:
        self.running = False
        self.thread.join()
        n = self.samples or 1
        return {"samples": self.samples, "hot_row_locked": round(self.hot_locked / n, 3),
                "counter_locked": round(self.counter_locked / n, 3),
                "backends": {k: round(v / n, 3) for k, v in sorted(self.states.items(), key=lambda kv: -kv[1])}}

    def _run(self):
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as conn:
            while self.running:
                t0 = time.monotonic()
                hot, counter, activity = conn.execute(PROBE_SQL, self.params, prepare=True).fetchone()
                self.samples += 1
                self.hot_locked += hot == 0
                self.counter_locked += counter == 0
                for state, wait_type, wait_event, query in activity:
                    kind = classify(state, wait_type, wait_event, query)
                    if kind:
                        self.states[kind] = self.states.get(kind, 0) + 1
                time.sleep(max(0.0, self.period - (time.monotonic() - t0)))


def pg_counters(conn) -> dict:
    row = conn.execute("SELECT xact_commit, xact_rollback FROM pg_stat_database WHERE datname = current_database()"
                       ).fetchone()
    backends = {pid: process_cpu_seconds(pid) for (pid,) in conn.execute(
        "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() "
        "AND backend_type = 'client backend'").fetchall()}
    return {"commits": row[0], "rollbacks": row[1], "backend_cpu": backends, "t": time.monotonic()}


def pg_delta(before: dict, after: dict, own_commits: int) -> dict:
    """Commits of the application in the phase (the probe's and our polls' one-statement transactions, and
    the two of pg_counters, taken off), and our backends' CPU."""
    cpu = sum(after["backend_cpu"][pid] - before["backend_cpu"].get(pid, 0.0) for pid in after["backend_cpu"])
    wall = after["t"] - before["t"]
    commits = after["commits"] - before["commits"] - own_commits - 2
    return {"commits": commits, "commits_per_s": round(commits / wall, 1), "own_commits": own_commits,
            "pg_backend_cpu_s": round(cpu, 2), "wall_s": round(wall, 2)}


def commit_ceiling(database_url: str, threads: int = 8, seconds: float = 3.0) -> float:
    """Plain one-row UPDATE + COMMIT from ``threads`` connections for ``seconds``: commits/s."""
    import psycopg

    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE bench_commit_probe (id int PRIMARY KEY, n bigint NOT NULL)")
        conn.execute("INSERT INTO bench_commit_probe SELECT g, 0 FROM generate_series(1, %s) g", (threads,))
    counts = [0] * threads
    stop_at = time.monotonic() + seconds

    def run(i):
        with psycopg.connect(database_url, autocommit=True) as conn:
            while time.monotonic() < stop_at:
                conn.execute("UPDATE bench_commit_probe SET n = n + 1 WHERE id = %s", (i + 1,), prepare=True)
                counts[i] += 1

    ts = [threading.Thread(target=run, args=(i,)) for i in range(threads)]
    t0 = time.monotonic()
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    rate = sum(counts) / (time.monotonic() - t0)
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("DROP TABLE bench_commit_probe")
    return round(rate, 1)


# --- checks ----------------------------------------------------------------------------------------

def checks(database_url: str, sa_url: str, placed_ids: list[int], confirmed: list[int], worker_logs: dict) -> dict:
    import psycopg

    env = {**os.environ, "DATABASE_URL": sa_url, "PYTHONPATH": str(ROOT), "SECRET_KEY": "bench",
           "TANHUI_ENV": "development", "CELERY_BROKER_URL": "memory://"}
    cli = subprocess.run([sys.executable, "-m", "marketplace.cli", "ledger", "check"], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=120)
    passed = cli.returncode == 0 and "ledger check passed" in cli.stdout  # the command ran, and passed
    result = {"ledger_check_exit": cli.returncode, "ledger_check_passed": passed,
              "ledger_check_output": (cli.stdout.strip().splitlines() or [""])[-1] + cli.stderr.strip()[-500:]}
    with psycopg.connect(database_url) as conn:
        result["orders_in_db_of_run"] = conn.execute("SELECT count(*) FROM orders WHERE id = ANY(%s)",
                                                     (placed_ids,)).fetchone()[0]
        result["overlapping_retired_ranges"] = conn.execute("""
            SELECT count(*) FROM (SELECT start, lag("end") OVER (PARTITION BY batch_id ORDER BY start) AS prev_end
                                  FROM serial_ranges) r WHERE prev_end > start""").fetchone()[0]
        result["completed_orders_with_wrong_retired_units"] = conn.execute("""
            SELECT count(*) FROM orders o
            WHERE o.status = 'completed' AND o.quantity_units <> coalesce(
                (SELECT sum(r."end" - r.start) FROM serial_ranges r
                 WHERE r.ref = 'order:' || o.id AND r.kind = 'retirement'), 0)""").fetchone()[0]
        result["confirmed_completed"] = conn.execute(
            "SELECT count(*) FROM orders WHERE id = ANY(%s) AND status = 'completed'", (confirmed,)).fetchone()[0]
        numbers = [n for (n,) in conn.execute("SELECT number FROM certificates").fetchall()]
        completed = conn.execute("SELECT count(*) FROM orders WHERE status = 'completed'").fetchone()[0]
        with_certificate = conn.execute("SELECT count(*) FROM orders o JOIN certificates c ON c.order_id = o.id "
                                        "WHERE o.status = 'completed'").fetchone()[0]
    by_year: dict[str, list[int]] = {}
    for number in numbers:
        _th, year, seq = number.split("-")
        by_year.setdefault(year, []).append(int(seq))
    result["certificates"] = len(numbers)
    result["certificate_numbers_gapless"] = all(sorted(seqs) == list(range(1, len(seqs) + 1))
                                                for seqs in by_year.values())
    result["certificate_years"] = {year: [min(s), max(s), len(s)] for year, s in by_year.items()}
    result["completed_orders"] = completed
    result["completed_with_certificate"] = with_certificate
    drawn = {}
    for name, path in worker_logs.items():
        drawn[name] = CERT_LINE.findall(path.read_text(errors="replace"))
    result["drawn_by_worker"] = {name: len(v) for name, v in drawn.items()}
    result["drawn_in_run"] = len({n for v in drawn.values() for n in v})
    all_drawn = [n for v in drawn.values() for n in v]
    result["drawn_twice"] = len(all_drawn) - len(set(all_drawn))
    result["ok"] = (passed and result["overlapping_retired_ranges"] == 0
                    and result["completed_orders_with_wrong_retired_units"] == 0
                    and result["confirmed_completed"] == len(confirmed) and result["certificate_numbers_gapless"]
                    and with_certificate == completed == len(numbers) and result["drawn_twice"] == 0
                    and result["orders_in_db_of_run"] == len(placed_ids)
                    and result["drawn_in_run"] == len(confirmed)
                    and all(n > 0 for n in result["drawn_by_worker"].values()))
    return result


# --- main ------------------------------------------------------------------------------------------

def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=600, help="orders per phase (hot listing, then spread)")
    parser.add_argument("--certificates", type=int, default=100, help="bank transfers confirmed")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--sample-ms", type=float, default=20)
    parser.add_argument("--admin-url", default=os.environ.get("BENCH_POSTGRES_URL",
                                                              "postgresql://postgres@127.0.0.1:5432/postgres"))
    parser.add_argument("--keep-db", action="store_true")
    parser.add_argument("--json", default=str(ROOT / "bench" / "results" / "scale_out.json"))
    args = parser.parse_args()
    started = time.monotonic()
    log(f"machine: {os.cpu_count()} CPUs, {platform.python_implementation()} {platform.python_version()}, "
        f"load average {os.getloadavg()[0]:.1f}")
    db_name, database_url = create_database(args.admin_url)
    sa_url = "postgresql+psycopg://" + database_url.split("://", 1)[1]
    log(f"scratch database {db_name}")
    tmp = tempfile.TemporaryDirectory(prefix="tanhui-scale-out-")
    folder = Path(tmp.name)
    procs: list = []
    figures: dict = {}
    try:
        return run(args, started, db_name, database_url, sa_url, folder, procs, figures)
    finally:
        for proc in procs:
            stop(proc)  # a second stop of one already stopped does nothing
        if args.keep_db:
            log(f"kept database {db_name}")
        else:
            drop_database(args.admin_url, db_name)
            log(f"dropped {db_name}")
        tmp.cleanup()


def run(args, started, db_name, database_url, sa_url, folder, procs, figures) -> int:
    app = None
    try:
        import psycopg

        app = make_app(database_url, folder)
        t0 = time.monotonic()
        setup = seed(app)
        hot = setup["listings"][0]
        log(f"demo data and {len(setup['buyer_tokens'])} buyer tokens + a bureau token in {time.monotonic() - t0:.1f} s; "
            f"hot listing {hot['id']} ({hot['units']} units), {len(setup['listings'])} listings on sale")
        queue = f"tanhui-scale-out-{uuid.uuid4().hex[:6]}"
        env = {"DATABASE_URL": sa_url, "CELERY_BROKER_URL": REDIS_URL, "CELERY_QUEUE": queue, "REDIS_URL": REDIS_URL,
               "SECRET_KEY": "bench", "TANHUI_ENV": "demo", "PUBLIC_BASE_URL": "http://127.0.0.1:5000",
               "CERT_SIGNING_KEY_FILE": str(folder / "signing_key.pem")}
        web_a, port_a, log_a = start_web("web-a", env, folder)
        procs.append(web_a)
        web_b, port_b, log_b = start_web("web-b", env, folder)
        procs.append(web_b)
        wait_until_ready(web_a, port_a, "web-a", log_a)
        wait_until_ready(web_b, port_b, "web-b", log_b)
        log("both servers answer /healthz")
        worker_logs = {}
        workers = {}
        for name in ("worker-1", "worker-2"):
            proc, path = start_worker(name, env, folder, queue)
            procs.append(proc)
            workers[name], worker_logs[name] = proc, path
        ports = [port_a, port_b]
        with psycopg.connect(database_url, autocommit=True) as conn:
            year = conn.execute("SELECT coalesce(max(year), extract(year FROM now())::int) FROM certificate_counters"
                                ).fetchone()[0]
            settings = {name: conn.execute(f"SHOW {name}").fetchone()[0]
                        for name in ("synchronous_commit", "fsync", "commit_delay", "max_connections")}
        probe = Probe(database_url, hot["batch_id"], hot["id"], year, args.sample_ms / 1000)
        figures["postgres_settings"] = settings

        # Orders of a size that fits: the warm-up, light and hot phases take at most 80 % of the hot listing.
        hot_orders = 4 * args.clients + max(50, args.orders // 6) + args.orders
        order_units = max(hot["min_units"], min(10_000, int(hot["units"] * 0.8) // hot_orders))
        if order_units * hot_orders > hot["units"] * 0.8:
            raise SystemExit(f"the hot listing has {hot['units']} units: too few for {hot_orders} orders of at least "
                             f"{order_units}; ask for fewer --orders")
        tonnes = f"{order_units / 10_000:.4f}"
        place_orders(ports, setup, args.clients, orders=4 * args.clients, listing_ids=[hot["id"]], tonnes=tonnes,
                     label="warm-up")
        placed: list[int] = []
        # "light": two clients, so the web processes have CPU to spare (as on hosts of their own): how long
        # the hot row is held when nothing waits for a core; "hot": every client on one listing; "spread":
        # the same load over every listing on sale.
        for phase, listing_ids, clients, orders in (
                ("light", [hot["id"]], 2, max(50, args.orders // 6)),
                ("hot", [hot["id"]], args.clients, args.orders),
                ("spread", [entry["id"] for entry in setup["listings"]], args.clients, args.orders)):
            if phase != "spread":
                size = tonnes
            else:  # each listing gets about orders / n of them; each gives at most half of what it has
                fits = min(e["units"] for e in setup["listings"]) * len(listing_ids) // (2 * args.orders)
                size = f"{max(max(e['min_units'] for e in setup['listings']), min(order_units, fits)) / 10_000:.4f}"
            log(f"  (minimum orders of the listings: {[e['min_units'] for e in setup['listings']]} units)")
            log(f"orders, {phase}: {orders} orders of {size} t on {len(listing_ids)} listing(s), "
                f"{clients} clients alternating servers A and B")
            with psycopg.connect(database_url, autocommit=True) as conn:
                before, cpu0 = pg_counters(conn), [server_cpu_seconds(web_a), server_cpu_seconds(web_b)]
                probe.start()
                result = place_orders(ports, setup, clients, orders=orders, listing_ids=listing_ids, tonnes=size,
                                      label=f"orders {phase}")
                result["probe"] = probe.stop()
                result["postgres"] = pg_delta(before, pg_counters(conn), result["probe"]["samples"])
                result["postgres"]["commits_per_order"] = round(result["postgres"]["commits"] / result["orders"], 2)
            web_cpu = [server_cpu_seconds(web_a) - cpu0[0], server_cpu_seconds(web_b) - cpu0[1]]
            n = result["orders"] or 1
            result["web_cpu_ms_per_order"] = [round(c / n * 1000, 2) for c in web_cpu]
            result["web_cpu_ms_per_order_total"] = round(sum(web_cpu) / n * 1000, 2)
            result["pg_cpu_ms_per_order"] = round(result["postgres"]["pg_backend_cpu_s"] / n * 1000, 2)
            # per order on the hot listing (spread: about one order in len(listing_ids) goes to it)
            result["hot_row_ms_per_order"] = round(result["probe"]["hot_row_locked"] * result["wall_s"]
                                                   / (n / len(listing_ids)) * 1000, 2)
            placed += result.pop("ids")
            figures[f"orders_{phase}"] = result
            log(f"  probe: hot row locked {result['probe']['hot_row_locked']:.0%} of the time "
                f"(≈{result['hot_row_ms_per_order']} ms per order); backends on average: {result['probe']['backends']}")
            log(f"  commits {result['postgres']['commits_per_s']}/s; CPU per order: web {result['web_cpu_ms_per_order']} ms "
                f"(A, B), PostgreSQL backends {result['pg_cpu_ms_per_order']} ms")

        # Certificates: the bureau confirms transfers; both workers retire and draw numbers.
        confirmed = placed[: args.certificates]
        log(f"certificates: the bureau confirms {len(confirmed)} transfers through both servers")
        with psycopg.connect(database_url, autocommit=True) as conn:
            before = pg_counters(conn)
            worker_cpu0 = {name: process_cpu_seconds(p.pid) for name, p in workers.items()}
            probe.start()
            t0 = time.monotonic()
            statuses = confirm_transfers(ports, setup["bureau_token"], confirmed)
            confirm_s = time.monotonic() - t0
            deadline = time.monotonic() + 150
            done, polls = 0, 0
            while time.monotonic() < deadline:
                polls += 1
                done = conn.execute("SELECT count(*) FROM orders WHERE id = ANY(%s) AND status = 'completed'",
                                    (confirmed,)).fetchone()[0]
                if done == len(confirmed) or any(p.poll() is not None for p in workers.values()):
                    break
                time.sleep(0.1)
            wall = time.monotonic() - t0
            certificate_probe = probe.stop()
            pg = pg_delta(before, pg_counters(conn), certificate_probe["samples"] + polls)
            pg["commits_per_certificate"] = round(pg["commits"] / max(1, done), 2)
        worker_cpu = {name: process_cpu_seconds(p.pid) - worker_cpu0[name] for name, p in workers.items()}
        drawn = {name: len(CERT_LINE.findall(path.read_text(errors="replace"))) for name, path in worker_logs.items()}
        figures["certificates"] = {
            "confirmed": len(confirmed), "confirm_statuses": statuses, "confirm_s": round(confirm_s, 2),
            "completed": done, "wall_s": round(wall, 2), "certificates_per_s": round(done / wall, 1),
            "drawn_by_worker": drawn,
            "worker_cpu_ms_per_certificate": {name: round(c / max(1, drawn[name]) * 1000, 1)
                                              for name, c in worker_cpu.items()},
            "pg_cpu_ms_per_certificate": round(pg["pg_backend_cpu_s"] / max(1, done) * 1000, 2),
            "counter_ms_per_certificate": round(certificate_probe["counter_locked"] * wall / max(1, done) * 1000, 2),
            "probe": certificate_probe, "postgres": pg}
        c = figures["certificates"]
        log(f"  {done}/{len(confirmed)} completed in {c['wall_s']} s = {c['certificates_per_s']} certificates/s; "
            f"drawn by {drawn}; counter locked {certificate_probe['counter_locked']:.0%} "
            f"(≈{c['counter_ms_per_certificate']} ms per certificate); worker CPU per certificate "
            f"{c['worker_cpu_ms_per_certificate']} ms; PostgreSQL {c['pg_cpu_ms_per_certificate']} ms; "
            f"commits {pg['commits_per_s']}/s")
        log(f"  backends on average: {certificate_probe['backends']}")
    finally:
        for proc in procs:
            stop(proc)
        if procs:
            log(f"stopped PIDs {', '.join(str(p.pid) for p in procs)}")

    figures["commit_ceiling_per_s"] = commit_ceiling(database_url)
    log(f"commit ceiling: {figures['commit_ceiling_per_s']} one-row commits/s from 8 connections")
    check = checks(database_url, sa_url, placed, confirmed, worker_logs)
    with app.app_context():
        from marketplace.extensions import db

        db.engine.dispose()

    figures["check"] = check
    figures["seconds"] = round(time.monotonic() - started, 1)
    figures["load_average_after"] = os.getloadavg()
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(figures, indent=2, ensure_ascii=False))

    print()
    for phase in ("light", "hot", "spread"):
        f = figures[f"orders_{phase}"]
        print(f"orders ({phase}): {f['orders_per_s']}/s (A {f['per_server'][0]}, B {f['per_server'][1]}), "
              f"p50 {f['p50_ms']} ms, p95 {f['p95_ms']} ms; hot row held {f['probe']['hot_row_locked']:.0%} "
              f"= {f['hot_row_ms_per_order']} ms/order; web CPU {f['web_cpu_ms_per_order_total']} ms/order, "
              f"PostgreSQL CPU {f['pg_cpu_ms_per_order']} ms/order; commits {f['postgres']['commits_per_s']}/s "
              f"({f['postgres']['commits_per_order']} per order)")
    c = figures["certificates"]
    print(f"certificates: {c['certificates_per_s']}/s, drawn by {check['drawn_by_worker']}; counter held "
          f"{c['probe']['counter_locked']:.0%} = {c['counter_ms_per_certificate']} ms/certificate; worker CPU "
          f"{c['worker_cpu_ms_per_certificate']} ms/certificate; PostgreSQL CPU {c['pg_cpu_ms_per_certificate']} "
          f"ms/certificate; commits {c['postgres']['commits_per_s']}/s ({c['postgres']['commits_per_certificate']} per "
          f"certificate, its order's payment included)")
    print(f"commit ceiling here: {figures['commit_ceiling_per_s']}/s (PostgreSQL {figures['postgres_settings']})")
    print(f"checks: ledger check exit {check['ledger_check_exit']} ({check['ledger_check_output']}); "
          f"overlapping retired ranges {check['overlapping_retired_ranges']}; completed orders whose ranges differ "
          f"from their units {check['completed_orders_with_wrong_retired_units']}; certificate numbers gapless "
          f"{check['certificate_numbers_gapless']} {check['certificate_years']}; certificates {check['certificates']} = "
          f"completed orders {check['completed_orders']} (with a certificate {check['completed_with_certificate']}); "
          f"drawn twice {check['drawn_twice']}; orders in db {check['orders_in_db_of_run']} = acknowledged {len(placed)}")
    print(f"{'OK' if check['ok'] else 'FAILED'} in {figures['seconds']} s; load average after "
          f"{' '.join(f'{x:.1f}' for x in os.getloadavg())}; figures in {args.json}")
    return 0 if check["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
