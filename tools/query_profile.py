"""Queries, lazy loads and milliseconds per request of the main pages, in process, on the demo data.

    .venv/bin/python tools/query_profile.py [--grow N] [--repeat 5] [--database-url URL]

Builds the app on a fresh database (a temporary SQLite file unless --database-url names an empty one),
seeds the demo as tests/test_query_budget.py does (with --grow N, also its N more rows of everything),
signs in through the login form and GETs each page of that test with the Flask test client: the
statements and lazy loads of one request, and the median time of --repeat requests after a warm-up.
Not a benchmark: one process, a few repetitions, a shared machine; compare runs made side by side.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TANHUI_PASSWORD_HASH_PROFILE", "test")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import sqlalchemy as sa  # noqa: E402
import sqlalchemy.orm as so  # noqa: E402

from marketplace import create_app  # noqa: E402
from marketplace.extensions import db  # noqa: E402
from tests.test_query_budget import PAGES, _login, grow, seed  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--grow", type=int, default=0, metavar="N")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="tanhui-queries-"))
    app = create_app({"TESTING": True, "SECRET_KEY": "profile", "TANHUI_ENV": "development", "SERVER_NAME": "localhost",
                      "SQLALCHEMY_DATABASE_URI": args.database_url or f"sqlite:///{workdir / 'profile.sqlite'}",
                      "CELERY_BROKER_URL": "memory://", "RATELIMIT_ENABLED": False, "INSTANCE_PATH": str(workdir),
                      "UPLOAD_FOLDER": str(workdir / "uploads"), "SESSION_COOKIE_SECURE": False})
    with app.app_context():
        db.create_all()
        engine = db.engine
    ids = seed(app)
    if args.grow:
        ids = grow(app, args.grow)

    counts = {"queries": 0, "lazy": 0}

    def count_query(*_args):
        counts["queries"] += 1

    def count_lazy(state):
        if state.is_select and state.lazy_loaded_from is not None:
            counts["lazy"] += 1

    sa.event.listen(engine, "before_cursor_execute", count_query)
    sa.event.listen(so.Session, "do_orm_execute", count_lazy)
    emails = {"bureau": "bureau@lishui.example", "summit": "summit@lishui.example",
              "guanpuyang": "guanpuyang@lishui.example"}
    clients = {}
    print(f"{'page':<36} {'as':<11} {'queries':>7} {'lazy':>5} {'ms':>7}")
    for who, page in PAGES:
        if who not in clients:
            clients[who] = app.test_client()
            if who:
                _login(clients[who], emails[who])
        path = page.format(**ids)
        assert clients[who].get(path).status_code == 200, path
        counts.update(queries=0, lazy=0)
        clients[who].get(path)
        queries, lazy = counts["queries"], counts["lazy"]
        times = []
        for _ in range(args.repeat):
            started = time.perf_counter()
            clients[who].get(path)
            times.append((time.perf_counter() - started) * 1000)
        print(f"{page:<36} {who or 'anyone':<11} {queries:>7} {lazy:>5} {statistics.median(times):>7.1f}")


if __name__ == "__main__":
    main()
