"""Where the CPU of one ``POST /api/v1/orders`` goes, in process: the Flask test client against PostgreSQL.

    .venv/bin/python bench/orders_profile.py [--orders 2000] [--top 40] [--sort tottime]

A scratch PostgreSQL database (``--admin-url``), the schema and the same seed as ``bench/orders_api.py``
(one listing, one buyer with a token); a warm-up, then ``--orders`` orders one after the other, each with a
fresh Idempotency-Key, timed with the process CPU clock (``time.process_time``: waiting on PostgreSQL is not
counted), then the same again under cProfile with a CPU clock, whose top entries are printed. Drops the
database at the end.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import sys
import tempfile
import time
import uuid
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
os.environ.setdefault("TANHUI_PASSWORD_HASH_PROFILE", "test")
os.environ.setdefault("TANHUI_ENV", "demo")

from orders_api import create_database, drop_database, make_app, seed  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=2000)
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("--sort", default="tottime")
    parser.add_argument("--no-profile", action="store_true")
    parser.add_argument("--callers", action="append", default=[], help="also print the callers of these functions")
    parser.add_argument("--admin-url", default=os.environ.get("BENCH_POSTGRES_URL",
                                                              "postgresql://postgres@127.0.0.1:5432/postgres"))
    args = parser.parse_args()
    name, url = create_database(args.admin_url)
    tmp = tempfile.TemporaryDirectory(prefix="tanhui-profile-")
    try:
        app = make_app(url, Path(tmp.name))
        setup = seed(app, 1, Decimal(3 * (args.orders + args.warmup)))
        client = app.test_client()
        token = setup["buyers"][0]["token"]
        body = {"quantity_tonnes": "1.0000", "listing_id": setup["listing_id"], "payment_method": "card",
                "beneficiary": "基准测试受益方", "retirement_reason": "下单基准测试"}

        def one():
            response = client.post("/api/v1/orders", json=body, headers={
                "Authorization": f"Bearer {token}", "Idempotency-Key": uuid.uuid4().hex})
            assert response.status_code == 201, response.get_data(as_text=True)

        for _ in range(args.warmup):
            one()
        c0, w0 = time.process_time(), time.perf_counter()
        for _ in range(args.orders):
            one()
        cpu, wall = time.process_time() - c0, time.perf_counter() - w0
        print(f"{args.orders} orders: {cpu / args.orders * 1000:.3f} ms CPU and {wall / args.orders * 1000:.3f} ms "
              f"wall per order (test client, one at a time)")
        if not args.no_profile:
            profiler = cProfile.Profile(time.process_time)
            profiler.enable()
            for _ in range(args.orders):
                one()
            profiler.disable()
            stats = pstats.Stats(profiler)
            stats.sort_stats(args.sort).print_stats(args.top)
            for name in args.callers:
                stats.print_callers(name)
        with app.app_context():
            from marketplace.extensions import db

            db.engine.dispose()
    finally:
        drop_database(args.admin_url, name)
        tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
