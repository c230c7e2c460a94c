"""Payment confirmed → certificate available, with one Celery worker process on Redis and PostgreSQL.

    .venv/bin/python bench/certificate_latency.py [-n 60] [--burst 100]

Creates a scratch PostgreSQL database (dropped at the end), one verified project, a listing and bank
transfer orders placed through the services. Then:

1. latency: one order at a time, the bureau confirms the transfer (the commit publishes the retire task
   through the outbox); we poll until the order is completed with its certificate PDF on disk;
2. throughput: ``--burst`` orders confirmed at once; certificates per second for the one worker;
3. baseline: a bare one-page ReportLab PDF, timed in the same run.

Uses PostgreSQL and Redis on 127.0.0.1 (DATABASE/REDIS from TEST_POSTGRES_URL / REDIS_URL if set).
Starts one worker subprocess and stops it (by its PID) at the end.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import date
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TANHUI_PASSWORD_HASH_PROFILE", "test")

import sqlalchemy as sa  # noqa: E402

from bench.certificates_pdf import bare_pdf, percentile  # noqa: E402

ADMIN_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")


def line(name: str, samples: list[float]) -> str:
    return (f"{name:<44} p50 {percentile(samples, 50) * 1000:8.1f} ms   p95 {percentile(samples, 95) * 1000:8.1f} ms"
            f"   (n={len(samples)})")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=60, help="orders timed one at a time")
    parser.add_argument("--burst", type=int, default=100, help="orders confirmed at once for throughput")
    args = parser.parse_args()

    name = f"tanhui_bench_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    database_url = urlsplit(ADMIN_URL)._replace(path=f"/{name}").geturl()
    instance = Path(tempfile.mkdtemp(prefix="tanhui-bench-"))
    queue = f"tanhui-bench-{uuid.uuid4().hex[:6]}"
    env = {**os.environ, "DATABASE_URL": database_url, "CELERY_BROKER_URL": REDIS_URL, "CELERY_QUEUE": queue,
           "REDIS_URL": REDIS_URL, "SECRET_KEY": "bench", "TANHUI_ENV": "development",
           "TANHUI_INSTANCE_PATH": str(instance), "UPLOAD_FOLDER": str(instance / "uploads")}
    os.environ.update({k: env[k] for k in ("DATABASE_URL", "CELERY_BROKER_URL", "CELERY_QUEUE", "REDIS_URL",
                                           "SECRET_KEY", "TANHUI_ENV", "TANHUI_INSTANCE_PATH", "UPLOAD_FOLDER")})
    worker = None
    try:
        from marketplace import create_app
        from marketplace.accounts import service as accounts
        from marketplace.accounts.credit_code import complete_credit_code
        from marketplace.accounts.models import User
        from marketplace.core.quantities import parse_cny, parse_tonnes
        from marketplace.extensions import db
        from marketplace.orders import service as orders
        from marketplace.orders.models import Order
        from marketplace.registry import service as registry

        app = create_app()
        with app.app_context():
            db.create_all()
            s = db.session
            orgs = {kind: accounts.create_organisation(s, kind=kind, name=f"bench-{kind}",
                                                       credit_code=complete_credit_code(f"9133000000000{i:04d}"))
                    for i, kind in enumerate(("seller", "buyer", "bureau"))}
            users = {kind: accounts.create_user(s, organisation_id=org.id, email=f"{kind}@bench.example",
                                                password="bench password") for kind, org in orgs.items()}
            region = None
            for level, region_name in (("province", "浙江省"), ("city", "丽水市"), ("county", "龙泉市"),
                                       ("township", "兰巨乡"), ("village", "官埔垟村")):
                region = registry.ensure_region(s, level=level, name=region_name, parent=region)
            village = region
            project = registry.create_project(s, actor=users["seller"], village_id=village.id, name="bench project",
                                              area_hectares="100", forest_type="杉木", methodology="CCER-14-001-V01",
                                              crediting_start=date(2020, 1, 1), crediting_end=date(2040, 1, 1))
            registry.add_document(s, project, actor=users["seller"], kind="other", filename="a.pdf",
                                  data=b"%PDF-1.4\n%%EOF\n")
            registry.transition_project(s, project, "submitted", actor=users["seller"])
            registry.transition_project(s, project, "verified", actor=users["bureau"], note="ok")
            batch = registry.issue_batch(s, project, actor=users["bureau"], quantity_units=parse_tonnes("100000"),
                                         vintage_start=date(2023, 1, 1), vintage_end=date(2023, 12, 31),
                                         verification_body="v", report_reference="r")
            listing = registry.create_listing(s, batch, actor=users["seller"], units=parse_tonnes("90000"),
                                              price_cny_per_tonne=parse_cny("36.00"))
            ids = []
            for _ in range(args.n + args.burst):
                order = orders.place_order(s, actor=users["buyer"], units=parse_tonnes("175.402"),
                                           payment_method="bank_transfer", beneficiary="基准测试",
                                           retirement_reason="bench", listing_id=listing.id)
                ids.append(order.id)
            s.commit()
            bureau_id = users["bureau"].id

        log = open(instance / "worker.log", "ab")  # noqa: SIM115
        worker = subprocess.Popen(  # noqa: S603
            [sys.executable, "-m", "celery", "-A", "workers.celery_app", "worker", "--pool=solo", "-Q", queue,
             "--without-heartbeat", "--without-gossip", "--without-mingle", "--loglevel=WARNING"],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        time.sleep(3)

        def confirm(order_ids):
            with app.app_context():
                bureau = db.session.get(User, bureau_id)
                for order_id in order_ids:
                    orders.confirm_bank_transfer(db.session, db.session.get(Order, order_id), actor=bureau,
                                                 reference=f"B{order_id}")
                db.session.commit()

        def completed(order_ids) -> int:
            with app.app_context():
                return db.session.scalar(sa.select(sa.func.count()).select_from(Order).where(
                    Order.id.in_(order_ids), Order.status == "completed"))

        # Warm-up: the worker's first task imports ReportLab and the fonts.
        confirm(ids[:1])
        deadline = time.monotonic() + 60
        while completed(ids[:1]) < 1:
            if time.monotonic() > deadline or worker.poll() is not None:
                raise SystemExit(f"the worker did not complete the warm-up order; see {instance / 'worker.log'}")
            time.sleep(0.01)
        latencies = []
        for i, order_id in enumerate(ids[1:args.n], 1):
            start = time.perf_counter()
            confirm([order_id])
            while completed([order_id]) < 1:
                time.sleep(0.005)
            latencies.append(time.perf_counter() - start)
            print(f"\rlatency {i}/{args.n - 1}", end="", file=sys.stderr, flush=True)
        print(file=sys.stderr)

        burst = ids[args.n:]
        start = time.perf_counter()
        confirm(burst)
        while (done := completed(burst)) < len(burst):
            print(f"\rburst {done}/{len(burst)}", end="", file=sys.stderr, flush=True)
            time.sleep(0.2)
        burst_seconds = time.perf_counter() - start
        print(file=sys.stderr)

        bare = []
        for _ in range(200):
            start = time.perf_counter()
            bare_pdf(instance / "bare.pdf")
            bare.append(time.perf_counter() - start)

        with app.app_context():
            from marketplace.registry import ledger

            report = ledger.check_invariants(db.session)
        print(line("payment confirmed → certificate ready", latencies))
        print(line("bare one-page ReportLab PDF", bare))
        print(f"{'one worker, burst of ' + str(len(burst)):<44} {len(burst) / burst_seconds:8.1f} certificates/s "
              f"({burst_seconds:.1f} s)")
        print(f"ledger check: {'passed' if report.ok else report.problems}")
        return 0 if report.ok else 1
    finally:
        if worker is not None and worker.poll() is None:
            worker.terminate()
            try:
                worker.wait(20)
            except subprocess.TimeoutExpired:
                worker.kill()
        try:
            from marketplace.extensions import db as _db

            with app.app_context():  # noqa: F821 — defined once the schema exists
                _db.engine.dispose()
        except Exception:  # noqa: BLE001, S110
            pass
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


if __name__ == "__main__":
    sys.exit(main())
