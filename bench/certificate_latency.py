"""Payment confirmed → certificate ready on Celery workers (Redis, PostgreSQL), against the same work in process.

    .venv/bin/python bench/certificate_latency.py [-n 60] [--burst 100] [--pool solo] [--no-two]

Creates a scratch PostgreSQL database (dropped at the end), one verified project, a listing and bank
transfer orders placed through the services. Then, in one run:

1. latency on one worker process: one order at a time, the bureau confirms the transfer (the commit
   publishes the task through the outbox); we poll until the order is completed (the PDF is on disk by
   then). The worker notes when each stage happened (bench/certificate_worker.py), so the time is split:
   paid committed and published → task received → retired → signed → PDF written → order completed.
   Before each such order, while the worker is idle, the reference runs here in process: one order's
   facts → signed → PDF on disk, timed exactly as bench/certificates_pdf.py does it (``facts_for`` +
   ``issue_certificate`` + commit + the PDF + commit), and another order's whole job (retire, sign, draw,
   complete, e-mail). Interleaved, both sides see the same machine (it is shared);
2. a burst of ``--burst`` orders confirmed in one transaction, on one worker process, then on two worker
   processes, each right after ``--block`` in-process orders of each kind (the reference rates); after
   each burst the ledger check runs, the certificate numbers are checked gapless (1 … n, the counter at n,
   one per completed order) and every PDF of the burst is verified offline.

Uses PostgreSQL and Redis on 127.0.0.1 (TEST_POSTGRES_URL / REDIS_URL if set). Starts the worker
subprocesses and stops them (by their PIDs) at the end.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
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

from bench.certificates_pdf import percentile  # noqa: E402

ADMIN_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")


def ms(samples: list[float]) -> str:
    return f"p50 {percentile(samples, 50) * 1000:7.1f} ms   p95 {percentile(samples, 95) * 1000:7.1f} ms"


def blank_pdf() -> bytes:
    from pypdf import PdfWriter

    writer = PdfWriter()
    writer.add_blank_page(width=72, height=72)
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


def main() -> int:  # noqa: C901, PLR0915 — one scenario, read top to bottom
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=60, help="orders timed one at a time (and in process)")
    parser.add_argument("--burst", type=int, default=100, help="orders confirmed at once for throughput")
    parser.add_argument("--pool", default="solo", help="the worker's --pool (solo, prefork, threads)")
    parser.add_argument("--concurrency", type=int, default=1, help="the worker's --concurrency (not for solo)")
    parser.add_argument("--block", type=int, default=20,
                        help="orders done in process right before each burst (its reference rate)")
    parser.add_argument("--no-two", action="store_true", help="skip the burst on two worker processes")
    parser.add_argument("--profile-worker", metavar="FILE", help="run the first worker under cProfile, stats to FILE")
    args = parser.parse_args()

    name = f"tanhui_bench_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    database_url = urlsplit(ADMIN_URL)._replace(path=f"/{name}").geturl()
    instance = Path(tempfile.mkdtemp(prefix="tanhui-bench-"))
    queue = f"tanhui-bench-{uuid.uuid4().hex[:6]}"
    stage_log = instance / "stages.jsonl"
    env = {**os.environ, "DATABASE_URL": database_url, "CELERY_BROKER_URL": REDIS_URL, "CELERY_QUEUE": queue,
           "REDIS_URL": REDIS_URL, "SECRET_KEY": "bench", "TANHUI_ENV": "development",
           "TANHUI_INSTANCE_PATH": str(instance), "UPLOAD_FOLDER": str(instance / "uploads"),
           "BENCH_STAGE_LOG": str(stage_log)}
    os.environ.update({k: env[k] for k in ("DATABASE_URL", "CELERY_BROKER_URL", "CELERY_QUEUE", "REDIS_URL",
                                           "SECRET_KEY", "TANHUI_ENV", "TANHUI_INSTANCE_PATH", "UPLOAD_FOLDER")})
    workers: list[subprocess.Popen] = []
    app = watcher = None
    try:
        from marketplace import create_app
        from marketplace.accounts import service as accounts
        from marketplace.accounts.credit_code import complete_credit_code
        from marketplace.accounts.models import User
        from marketplace.certificates import notifications, retirement
        from marketplace.certificates import pdf as certificate_pdf
        from marketplace.certificates import service as certificates
        from marketplace.certificates.models import Certificate, CertificateCounter
        from marketplace.certificates.signing import published_keys
        from marketplace.core.outbox_models import OutboxMessage
        from marketplace.core.quantities import parse_cny, parse_tonnes
        from marketplace.extensions import db
        from marketplace.orders import service as orders
        from marketplace.orders.models import Order
        from marketplace.registry import ledger
        from marketplace.registry import service as registry

        app = create_app()
        warmups = 3  # one for the first worker, two for the second (each process warms its fonts)
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
            project = registry.create_project(s, actor=users["seller"], village_id=region.id, name="bench project",
                                              area_hectares="100", forest_type="杉木", methodology="CCER-14-001-V01",
                                              crediting_start=date(2020, 1, 1), crediting_end=date(2040, 1, 1))
            registry.add_document(s, project, actor=users["seller"], kind="other", filename="a.pdf", data=blank_pdf())
            registry.transition_project(s, project, "submitted", actor=users["seller"])
            registry.transition_project(s, project, "verified", actor=users["bureau"], note="ok")
            batch = registry.issue_batch(s, project, actor=users["bureau"], quantity_units=parse_tonnes("100000"),
                                         vintage_start=date(2023, 1, 1), vintage_end=date(2023, 12, 31),
                                         verification_body="v", report_reference="r")
            listing = registry.create_listing(s, batch, actor=users["seller"], units=parse_tonnes("90000"),
                                              price_cny_per_tonne=parse_cny("36.00"))
            ids = []
            block = args.block
            for _ in range(1 + 3 * args.n + warmups + 2 * (2 * block + args.burst)):
                order = orders.place_order(s, actor=users["buyer"], units=parse_tonnes("175.402"),
                                           payment_method="bank_transfer", beneficiary="基准测试",
                                           retirement_reason="bench", listing_id=listing.id)
                ids.append(order.id)
            s.commit()
            bureau_id = users["bureau"].id
        fresh = iter(ids)

        def take(count: int) -> list[int]:
            return [next(fresh) for _ in range(count)]

        def confirm(order_ids):
            with app.app_context():
                bureau = db.session.get(User, bureau_id)
                for order_id in order_ids:
                    orders.confirm_bank_transfer(db.session, db.session.get(Order, order_id), actor=bureau,
                                                 reference=f"B{order_id}")
                db.session.commit()

        # Polled on one plain connection (a cheap statement): the bench must not take the worker's CPU.
        watcher = sa.create_engine(database_url, isolation_level="AUTOCOMMIT").connect()
        count_completed = sa.text("SELECT count(*) FROM orders WHERE id = ANY(:ids) AND status = 'completed'")
        count_notified = sa.text("SELECT count(*) FROM orders WHERE id = ANY(:ids) AND notified_at IS NOT NULL")

        def completed(order_ids) -> int:
            return watcher.execute(count_completed, {"ids": list(order_ids)}).scalar_one()

        def notified(order_ids) -> int:
            return watcher.execute(count_notified, {"ids": list(order_ids)}).scalar_one()

        paid_committed: list[float] = []

        @sa.event.listens_for(db.session, "after_commit", insert=True)  # before the relay publishes
        def _paid_committed(_session):
            paid_committed.append(time.time())

        def checks() -> str:
            """The ledger check, and the certificate numbers gapless: 1 … n, the counter at n, one per order."""
            with app.app_context():
                report = ledger.check_invariants(db.session)
                numbers = sorted(int(number.rsplit("-", 1)[1]) for number in
                                 db.session.scalars(sa.select(Certificate.number)))
                counter = db.session.scalar(sa.select(sa.func.sum(CertificateCounter.last_number))) or 0
                done = db.session.scalar(sa.select(sa.func.count()).select_from(Order)
                                         .where(Order.status == "completed"))
            gapless = numbers == list(range(1, len(numbers) + 1)) and counter == len(numbers) == done
            return (f"ledger check {'passed' if report.ok else report.problems}; "
                    f"{len(numbers)} certificates, numbers {'gapless 1…' + str(len(numbers)) if gapless else 'NOT gapless'}"
                    f" (counter {counter}, completed orders {done})"), report.ok and gapless

        # --- in process: the reference, measured between the worker's orders (same conditions) ---------------
        # The tasks these orders ask for stay unpublished (no sweeper runs): the bench does their work here.
        def in_process_facts_to_pdf(order_id) -> float:
            """Confirmed and retired here (untimed), then facts → signed → PDF on disk timed, then completed."""
            app.config["OUTBOX_PUBLISH_ON_COMMIT"] = False
            try:
                confirm([order_id])
                with app.app_context():
                    s = db.session
                    retirement.retire_order(s, order_id)
                    s.commit()
                    order = s.get(Order, order_id)
                    begin = time.perf_counter()
                    certificate = certificates.issue_certificate(s, order_id=order_id,
                                                                 facts=retirement.facts_for(s, order))
                    s.commit()
                    certificate_pdf.write_certificate_pdf(s, certificate)
                    s.commit()
                    took = time.perf_counter() - begin
                    retirement.generate_certificate(s, order_id)  # completes the order (the PDF is there)
                return took
            finally:
                app.config["OUTBOX_PUBLISH_ON_COMMIT"] = True

        def in_process_whole_job(order_id) -> float:
            """The worker's whole job, here: retire, sign, draw, complete, and the e-mail."""
            app.config["OUTBOX_PUBLISH_ON_COMMIT"] = False
            try:
                confirm([order_id])
                with app.app_context():
                    begin = time.perf_counter()
                    retirement.retire_and_certify(db.session, order_id)
                    notifications.certificate_ready(db.session, order_id)
                    return time.perf_counter() - begin
            finally:
                app.config["OUTBOX_PUBLISH_ON_COMMIT"] = True

        in_process_facts_to_pdf(take(1)[0])  # warm-up: fonts, the key, imports

        # --- workers ----------------------------------------------------------------------------------
        def start_worker(tag: str) -> subprocess.Popen:
            log = open(instance / f"worker-{tag}.log", "ab")  # noqa: SIM115
            profile = ["-m", "cProfile", "-o", args.profile_worker] if args.profile_worker and tag == "1" else []
            process = subprocess.Popen(  # noqa: S603
                [sys.executable, *profile, "-m", "celery", "-A", "bench.certificate_worker", "worker",
                 f"--pool={args.pool}", "-Q", queue, "-n", f"bench-{tag}@%h", "--without-heartbeat",
                 "--without-gossip", "--without-mingle", "--loglevel=WARNING",
                 *([f"--concurrency={args.concurrency}"] if args.pool != "solo" else [])],
                cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
            workers.append(process)
            return process

        def wait_for(order_ids, what=completed, timeout=300.0, poll=0.003) -> float:
            deadline = time.monotonic() + timeout
            while what(order_ids) < len(order_ids):
                if time.monotonic() > deadline or any(w.poll() is not None for w in workers):
                    raise SystemExit(f"the workers did not finish; see {instance}/worker-*.log")
                time.sleep(poll)
            return time.time()

        def warm_up():
            order_id = take(1)[0]
            confirm([order_id])
            wait_for([order_id], timeout=60)
            wait_for([order_id], notified, timeout=60)

        start_worker("1")
        time.sleep(3)
        warm_up()

        # --- latency, one at a time, each beside an in-process run ---------------------------------------------
        stage_log.write_text("")
        facts_to_pdf, whole_job, latencies, from_call, starts = [], [], [], [], {}
        for i in range(1, args.n + 1):
            facts_to_pdf.append(in_process_facts_to_pdf(take(1)[0]))
            whole_job.append(in_process_whole_job(take(1)[0]))
            order_id = take(1)[0]
            paid_committed.clear()
            start = time.time()
            confirm([order_id])
            ready = wait_for([order_id])
            starts[order_id] = paid_committed[0]
            latencies.append(ready - paid_committed[0])
            from_call.append(ready - start)
            wait_for([order_id], notified)  # the e-mail goes before the next order, as it would when idle
            print(f"\rlatency {i}/{args.n}", end="", file=sys.stderr, flush=True)
        print(file=sys.stderr)
        with app.app_context():
            published: dict[int, object] = {}
            for kwargs, moment in db.session.execute(sa.select(OutboxMessage.kwargs, OutboxMessage.published_at)
                                                     .where(OutboxMessage.task_name == orders.RETIRE_TASK)
                                                     .order_by(OutboxMessage.id)):
                published.setdefault((kwargs or {}).get("order_id"), moment)
            done_at = dict(db.session.execute(sa.select(Order.id, Order.completed_at)
                                              .where(Order.id.in_(list(starts)))).all())
        stages: dict[str, list[float]] = {}
        per_order: dict[int, dict[str, float]] = {}
        statements: dict[str, int] = {}
        for raw in stage_log.read_text().splitlines():
            entry = json.loads(raw)
            if entry["order_id"] in starts:
                per_order.setdefault(entry["order_id"], {}).setdefault(entry["stage"], entry["t"])
                if entry.get("statements") is not None and not entry["stage"].startswith("received"):
                    statements.setdefault(entry["stage"], entry["statements"])
        for order_id, seen in per_order.items():
            seen["outbox published"] = published[order_id].timestamp()
            seen["order completed (completed_at)"] = done_at[order_id].timestamp()
            for stage, moment in seen.items():
                stages.setdefault(stage, []).append(moment - starts[order_id])
        print(f"{'in process: facts → signed → PDF on disk':<52} {ms(facts_to_pdf)}   (n={len(facts_to_pdf)})")
        print(f"{'in process: the whole job (retire … completed, e-mail)':<52} {ms(whole_job)}   (n={len(whole_job)})")
        print(f"{'one worker: payment confirmed → certificate ready':<52} {ms(latencies)}   (n={len(latencies)})")
        print(f"  (from the paid commit; from the start of the bureau's confirmation call: {ms(from_call)})")
        print(f"  ratio to in-process facts → PDF (p50): {percentile(latencies, 50) / percentile(facts_to_pdf, 50):.2f}×;"
              f" to the whole job in process: {percentile(latencies, 50) / percentile(whole_job, 50):.2f}×")
        print("  when each stage was reached, from the paid commit (p50, p95):")
        for stage, samples in sorted(stages.items(), key=lambda item: percentile(item[1], 50)):
            sent = f"   {statements[stage]:3d} statements in the task so far" if stage in statements else ""
            print(f"    {stage:<48} {ms(samples)}{sent}")
        print("  " + checks()[0])

        # --- bursts, each right after an in-process block ----------------------------------------------------
        def burst(count, label) -> float:
            facts, whole = [], []
            for _ in range(block):
                facts.append(in_process_facts_to_pdf(take(1)[0]))
                whole.append(in_process_whole_job(take(1)[0]))
            in_process_rate, whole_rate = len(facts) / sum(facts), len(whole) / sum(whole)
            order_ids = take(count)
            start = time.time()
            confirm(order_ids)
            end = wait_for(order_ids, poll=0.02)
            wait_for(order_ids, notified, poll=0.05)
            rate = len(order_ids) / (end - start)
            summary, ok = checks()
            print(f"{label:<52} {rate:6.1f} certificates/s ({end - start:.1f} s)")
            print(f"  just before, in process: facts → PDF {in_process_rate:.1f}/s, the whole job {whole_rate:.1f}/s "
                  f"(n={block} each): the burst is {rate / in_process_rate:.2f}× and {rate / whole_rate:.2f}×")
            print(f"  {summary}")
            with app.app_context():  # every PDF of the burst verifies offline (drawn whole, by the right worker)
                keys = published_keys(db.session)
                paths = db.session.scalars(sa.select(Certificate.pdf_path).where(Certificate.order_id.in_(order_ids)))
                bad = [path for path in paths
                       if not path or not certificate_pdf.verify_pdf(instance / path, keys)[0]]
            print(f"  {len(order_ids) - len(bad)} of {len(order_ids)} PDFs verify offline")
            if not ok or bad:
                raise SystemExit("a check failed")
            return rate

        one = burst(args.burst, f"one worker process, burst of {args.burst}")
        if not args.no_two:
            start_worker("2")
            time.sleep(3)
            warm_up()
            warm_up()
            two = burst(args.burst, f"two worker processes, burst of {args.burst}")
            print(f"  two against one: {two / one:.2f}× (2 cores, shared with other work)")
        shutil.rmtree(instance, ignore_errors=True)
        return 0
    finally:
        for process in workers:
            if process.poll() is None:
                process.terminate()
        for process in workers:
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
        if watcher is not None:
            watcher.close()
        if app is not None:
            from marketplace.extensions import db as _db

            with app.app_context():
                _db.engine.dispose()
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


if __name__ == "__main__":
    sys.exit(main())
