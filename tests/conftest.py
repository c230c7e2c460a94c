"""Test fixtures.

The suite runs twice (see the Makefile):
- by default on a SQLite file with the in-memory Celery broker;
- with TANHUI_TEST_DB=postgres on a fresh PostgreSQL database and Redis, where the tests marked
  ``postgres``, ``redis`` and ``stripe`` also run. With REQUIRE_SERVICES=1 (CI), a missing service
  fails those tests instead of skipping them.

Tests commit for real (concurrency, the outbox and workers need real transactions); every table is
emptied after each test.
"""

from __future__ import annotations

import itertools
import os
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import pytest

# Cheap password hashing for tests only (argon2id still, smaller cost); set before the app imports it.
os.environ.setdefault("TANHUI_PASSWORD_HASH_PROFILE", "test")
# Not production: the tests run on the emulator's URLs and test keys, which production refuses.
os.environ.setdefault("TANHUI_ENV", "test")

import sqlalchemy as sa  # noqa: E402

from marketplace import create_app  # noqa: E402
from marketplace.extensions import db, limiter  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
RUN_ID = uuid.uuid4().hex[:10]
ON_POSTGRES = os.environ.get("TANHUI_TEST_DB") == "postgres"
REQUIRE_SERVICES = os.environ.get("REQUIRE_SERVICES") == "1"
POSTGRES_ADMIN_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")


def compile_catalogues(translations: Path = ROOT / "marketplace" / "translations") -> list[Path]:
    """``pybabel compile --use-fuzzy`` for every catalogue whose .mo is missing or older than its .po (the
    .mo files are build output, not committed), so that a bare ``pytest`` after ``pip install -e .[dev]``
    sees the translations. Returns the .mo files it wrote."""
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po

    written = []
    for po_path in sorted(translations.glob("*/LC_MESSAGES/*.po")):
        mo_path = po_path.with_suffix(".mo")
        if mo_path.exists() and mo_path.stat().st_mtime >= po_path.stat().st_mtime:
            continue
        with po_path.open("rb") as po_file:
            catalog = read_po(po_file, locale=po_path.parent.parent.name)
        partial = mo_path.with_name(f"{mo_path.name}.{os.getpid()}.tmp")
        with partial.open("wb") as mo_file:
            write_mo(mo_file, catalog, use_fuzzy=True)
        partial.replace(mo_path)  # whole or not at all, should another process read it meanwhile
        written.append(mo_path)
    return written


def pytest_configure(config):  # noqa: ARG001 — pytest's signature
    compile_catalogues()


def service_missing(what: str, why: str):
    """Fail in CI (REQUIRE_SERVICES=1), skip on a developer's machine without the service."""
    message = f"{what} is not reachable: {why}"
    if REQUIRE_SERVICES:
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


def _port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pytest_addoption(parser):
    parser.addoption("--forbid-lazy-loads", action="store_true",
                     default=os.environ.get("TANHUI_FORBID_LAZY_LOADS") == "1",
                     help="fail a test in which a request loads a relationship lazily from the database "
                          "(also TANHUI_FORBID_LAZY_LOADS=1); see tests/lazy_loads.py")


@pytest.fixture(autouse=True)
def _lazy_loads(request):
    """With --forbid-lazy-loads, a lazy load that reaches the database during a request fails the test."""
    if not request.config.getoption("--forbid-lazy-loads"):
        yield
        return
    from tests.lazy_loads import forbid_lazy_loads

    with forbid_lazy_loads() as refused:
        yield
    if refused:
        pytest.fail("lazy loads: " + ", ".join(sorted(set(refused))), pytrace=False)


#: Tests with these markers need the real services; they run in the PostgreSQL pass only.
SERVICE_MARKERS = ("postgres", "redis", "stripe", "browser")


def pytest_collection_modifyitems(config, items):
    """On the SQLite run, tests that need the real services are deselected (not skipped): they run
    in the PostgreSQL pass, where a missing service fails them under REQUIRE_SERVICES=1."""
    if ON_POSTGRES:
        return
    selected, deselected = [], []
    for item in items:
        needs_services = any(item.get_closest_marker(m) for m in SERVICE_MARKERS)
        (deselected if needs_services else selected).append(item)
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = selected


@pytest.fixture(scope="session")
def database_url(tmp_path_factory):
    if not ON_POSTGRES:
        yield f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.sqlite'}"
        return
    admin = sa.create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"tanhui_test_{RUN_ID}"
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # noqa: BLE001
        pytest.fail(f"PostgreSQL is not reachable at {POSTGRES_ADMIN_URL}: {exc}", pytrace=False)
    parts = urlsplit(POSTGRES_ADMIN_URL)
    yield parts._replace(path=f"/{name}").geturl()
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


# --- fresh, empty databases (migrations) ----------------------------------------------------------

_database_numbers = itertools.count()


@pytest.fixture
def sqlite_database(tmp_path):
    """A function that returns the URL of a new, empty SQLite database."""
    return lambda: f"sqlite:///{tmp_path / f'fresh{next(_database_numbers)}.sqlite'}"


@pytest.fixture
def postgres_database():
    """A function that creates a new, empty PostgreSQL database and returns its URL (dropped afterwards)."""
    admin = sa.create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    names = []

    def create() -> str:
        name = f"tanhui_migrate_{RUN_ID}_{next(_database_numbers)}"
        try:
            with admin.connect() as conn:
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
                conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        except sa.exc.OperationalError as exc:
            service_missing("PostgreSQL", str(exc))
        names.append(name)
        return sa.engine.make_url(POSTGRES_ADMIN_URL).set(database=name).render_as_string(hide_password=False)

    yield create
    if names:
        with admin.connect() as conn:
            for name in names:
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture
def empty_database_url(request):
    """An empty database of the pass's kind (SQLite, or PostgreSQL in the PostgreSQL pass)."""
    return request.getfixturevalue("postgres_database" if ON_POSTGRES else "sqlite_database")()


@pytest.fixture(scope="session")
def redis_url():
    parts = urlsplit(REDIS_URL)
    if not _port_open(parts.hostname or "127.0.0.1", parts.port or 6379):
        service_missing("Redis", REDIS_URL)
    return REDIS_URL


@pytest.fixture(scope="session")
def base_config(database_url, tmp_path_factory):
    instance = tmp_path_factory.mktemp("instance")
    config = {
        "TESTING": True,
        "INSTANCE_PATH": str(instance),
        "SECRET_KEY": "test-secret-key",
        "SQLALCHEMY_DATABASE_URI": database_url,
        "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": True},
        "SERVER_NAME": "localhost",
        "CELERY_BROKER_URL": "memory://",
        "CELERY_QUEUE": f"tanhui-test-{RUN_ID}",
        "RATELIMIT_STORAGE_URI": "memory://",
        "RATELIMIT_KEY_PREFIX": f"tanhui-test-{RUN_ID}",
        # The storage's own prefix too: limiter.reset() after each test deletes "<prefix>:*", which with the
        # library's default ("LIMITS") wiped the counters of every other test run sharing the Redis.
        "RATELIMIT_STORAGE_OPTIONS": {"key_prefix": f"LIMITS-{RUN_ID}", "socket_connect_timeout": 0.5,
                                      "socket_timeout": 0.5},
        "UPLOAD_FOLDER": str(instance / "uploads"),
        "SESSION_COOKIE_SECURE": False,
        "REMEMBER_COOKIE_SECURE": False,
        # Two-step sign-in is required of bureau staff by default; tests of it (tests/test_two_step.py) turn it
        # on, the rest sign the bureau in with the password alone.
        "TWO_STEP_REQUIRED_ROLES": frozenset(),
    }
    if ON_POSTGRES:
        # The PostgreSQL pass also keeps the rate limiter's counters on the real Redis.
        parts = urlsplit(REDIS_URL)
        if _port_open(parts.hostname or "127.0.0.1", parts.port or 6379):
            config["RATELIMIT_STORAGE_URI"] = REDIS_URL
        elif REQUIRE_SERVICES:
            pytest.fail(f"Redis is not reachable at {REDIS_URL}", pytrace=False)
    return config


@pytest.fixture(scope="session")
def app(base_config):
    application = create_app(dict(base_config))
    with application.app_context():
        db.create_all()
    yield application
    with application.app_context():
        db.session.remove()
        db.drop_all()
        db.engine.dispose()


@pytest.fixture
def make_app(base_config, app):
    """Another application on the same database with some settings changed."""
    made = []

    def factory(**overrides):
        application = create_app({**base_config, **overrides})
        made.append(application)
        return application

    yield factory
    for application in made:
        with application.app_context():
            db.session.remove()
            db.engine.dispose()


def _empty_all_tables(application):
    with application.app_context():
        db.session.remove()
        tables = [t for t in db.metadata.sorted_tables]
        with db.engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                names = ", ".join(f'"{t.name}"' for t in tables)
                conn.execute(sa.text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
            else:
                for table in reversed(tables):
                    conn.execute(table.delete())


@pytest.fixture(autouse=True)
def _clean_database(request):
    yield
    if "app" in request.fixturenames:
        application = request.getfixturevalue("app")
        _empty_all_tables(application)
        with application.app_context():
            limiter.reset()


@pytest.fixture
def app_ctx(app):
    with app.app_context():
        yield app


@pytest.fixture
def session(app_ctx):
    """The application's scoped session inside an app context, for tests of services.

    Do not combine with the HTTP client in one test: requests would share this context."""
    yield db.session
    db.session.rollback()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


class CsrfClient:
    """Drives forms the way a browser does: GET the page, read its CSRF token, POST it back."""

    def __init__(self, client):
        self.client = client

    def csrf_token(self, page: str) -> str:
        import re

        html = self.client.get(page).get_data(as_text=True)
        match = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html) or re.search(
            r'name="csrf_token" value="([^"]+)"', html)
        assert match, f"no CSRF token on {page}"
        return match.group(1)

    def post_form(self, page: str, data: dict, action: str | None = None, **kwargs):
        token = self.csrf_token(page)
        return self.client.post(action or page, data={**data, "csrf_token": token}, **kwargs)


@pytest.fixture
def browser_like(client):
    return CsrfClient(client)


@pytest.fixture
def login(client):
    """Sign a user in through the real form (CSRF and all)."""

    def do_login(email: str, password: str = "correct horse battery"):
        form = CsrfClient(client)
        response = form.post_form("/login", {"email": email, "password": password})
        assert response.status_code == 302, response.get_data(as_text=True)[:500]
        return client

    return do_login


@pytest.fixture
def factory(app):
    from tests.factories import Factory

    return Factory(app)


# --- real services -------------------------------------------------------------------------------

@pytest.fixture
def redis_app(make_app, redis_url):
    """The application with its broker and rate limiter on the real Redis."""
    if not ON_POSTGRES:
        pytest.skip("queue tests run in the PostgreSQL pass")
    return make_app(CELERY_BROKER_URL=redis_url, RATELIMIT_STORAGE_URI=redis_url)


@pytest.fixture
def celery_worker(worker_factory, redis_url):
    """A real Celery worker process on Redis and the test database. Yields a handle to restart it."""
    return worker_factory(redis_url)


@pytest.fixture
def worker_factory(database_url, base_config, tmp_path, app):
    """Start real Celery worker processes on a broker of the test's choosing, with extra settings (and
    ``include``: modules of tests' own for that worker to import, e.g. tests.worker_faults)."""
    if not ON_POSTGRES:
        pytest.skip("worker tests run in the PostgreSQL pass")
    started = []

    def start(broker_url: str, *, include: tuple[str, ...] = (), **extra_env):
        worker = _worker(broker_url, database_url, base_config, tmp_path / f"worker{len(started)}", extra_env,
                         app.instance_path, include)
        started.append(worker)
        return worker.start()

    yield start
    for worker in started:
        worker.stop(kill=True)


def _worker(redis_url, database_url, base_config, tmp_path, extra_env, instance_path, include=()):
    tmp_path.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "CELERY_BROKER_URL": redis_url,
        "CELERY_QUEUE": base_config["CELERY_QUEUE"],
        "SECRET_KEY": "test-secret-key",
        "REDIS_URL": redis_url,
        "TANHUI_ENV": "development",
        "OUTBOX_SWEEP_AFTER_SECONDS": "0",
        "UPLOAD_FOLDER": base_config["UPLOAD_FOLDER"],
        "TANHUI_INSTANCE_PATH": instance_path,
        **{k: str(v) for k, v in extra_env.items()},
    }

    class Worker:
        process: subprocess.Popen | None = None

        def start(self):
            log = open(tmp_path / "worker.log", "ab")  # noqa: SIM115
            self.process = subprocess.Popen(  # noqa: S603
                [sys.executable, "-m", "celery", "-A", "workers.celery_app", "worker", "--pool=solo",
                 "--without-heartbeat", "--without-gossip", "--without-mingle", "-Q", env["CELERY_QUEUE"],
                 "--loglevel=INFO", *(["--include", ",".join(include)] if include else [])],
                cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
            return self

        def stop(self, kill: bool = False):
            if self.process and self.process.poll() is None:
                (self.process.kill if kill else self.process.terminate)()
                self.process.wait(timeout=20)

        def log(self) -> str:
            path = tmp_path / "worker.log"
            return path.read_text(errors="replace") if path.exists() else ""

    return Worker()


def wait_for(predicate, timeout: float = 20.0, interval: float = 0.1):
    """Poll until predicate() is truthy; return its value or fail after the timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    pytest.fail(f"condition not met within {timeout}s")


# --- the Stripe emulator -------------------------------------------------------------------------

class StripeEmulator:
    """A running localstripe: its base URL, keys and webhook secret, and a way to point its webhook."""

    secret_key = "sk_test_tanhui_emulator"
    publishable_key = "pk_test_tanhui_emulator"
    webhook_secret = "whsec_tanhui_emulator"

    def __init__(self, base_url: str, process: subprocess.Popen, log_path: Path):
        self.base_url = base_url
        self.process = process
        self.log_path = log_path

    @property
    def js_url(self) -> str:
        return f"{self.base_url}/js.stripe.com/v3/"

    def app_config(self) -> dict:
        """Settings that point an application at this emulator."""
        return {"STRIPE_API_BASE": self.base_url, "STRIPE_SECRET_KEY": self.secret_key,
                "STRIPE_PUBLISHABLE_KEY": self.publishable_key, "STRIPE_WEBHOOK_SECRET": self.webhook_secret,
                "STRIPE_JS_URL": self.js_url}

    def register_webhook(self, url: str, secret: str | None = None) -> None:
        import requests

        response = requests.post(f"{self.base_url}/_config/webhooks/tanhui",
                                 data={"url": url, "secret": secret or self.webhook_secret}, timeout=5)
        response.raise_for_status()

    def get(self, path: str, **params) -> dict:
        import requests

        response = requests.get(f"{self.base_url}{path}", params=params, auth=(self.secret_key, ""), timeout=5)
        response.raise_for_status()
        return response.json()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


@pytest.fixture(scope="session")
def stripe_emulator(tmp_path_factory):
    """localstripe on a free loopback port (tools/stripe_emulator.py), in memory. Fails under
    REQUIRE_SERVICES=1 when it cannot start, skips otherwise."""
    import urllib.request

    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    log_path = tmp_path_factory.mktemp("stripe") / "localstripe.log"
    log = open(log_path, "ab")  # noqa: SIM115
    try:
        process = subprocess.Popen(  # noqa: S603
            [sys.executable, str(ROOT / "tools/stripe_emulator.py"), "--port", str(port)],
            cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    except OSError as exc:
        service_missing("The Stripe emulator", str(exc))
    emulator = StripeEmulator(base_url, process, log_path)
    deadline = time.monotonic() + 20
    ready = False
    while time.monotonic() < deadline and process.poll() is None:
        try:
            with urllib.request.urlopen(emulator.js_url, timeout=1) as response:  # noqa: S310
                ready = response.status == 200
                break
        except OSError:
            time.sleep(0.1)
    if not ready:
        process.kill()
        process.wait(timeout=10)
        service_missing("The Stripe emulator", f"did not start on {base_url}: {emulator.log()[-2000:]}")
    yield emulator
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
    log.close()


@pytest.fixture
def stripe_app(make_app, stripe_emulator):
    """The application pointed at the Stripe emulator."""
    return make_app(**stripe_emulator.app_config())


# --- private services that a test may stop, restart or slow down (tests/faults.py) -----------------

@pytest.fixture(scope="module")
def _private_postgres_cluster():
    """One private PostgreSQL cluster per test module (initdb takes seconds); each test gets its own database."""
    if not ON_POSTGRES:
        pytest.skip("fault tests run in the PostgreSQL pass")
    from tests.faults import PrivatePostgres, ServiceMissing

    try:
        server = PrivatePostgres()
    except (ServiceMissing, OSError) as exc:
        service_missing("A private PostgreSQL", str(exc))
    try:
        server.init()
        server.start()
    except (subprocess.SubprocessError, OSError) as exc:
        server.destroy()
        service_missing("A private PostgreSQL", f"{exc}: {getattr(exc, 'stderr', b'')!r} {server.log()[-1000:]}")
    yield server
    server.destroy()


@pytest.fixture
def private_postgres(_private_postgres_cluster):
    """A PostgreSQL server of this test's own (a private cluster on a free port, running, with a new empty
    database that ``url`` names), so that stopping or restarting it disturbs nobody else. PostgreSQL pass only."""
    server = _private_postgres_cluster
    if not server.running():
        server.start()
    server.database = f"fault_{RUN_ID}_{next(_database_numbers)}"
    admin = sa.create_engine(server.admin_url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{server.database}"'))
    yield server
    if not server.running():
        server.start()
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{server.database}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture
def private_redis(tmp_path):
    """A Redis server of this test's own (started; stopped afterwards), so stopping it disturbs nobody else."""
    from tests.faults import PrivateRedis, ServiceMissing

    try:
        server = PrivateRedis(tmp_path)
        server.start()
    except (ServiceMissing, OSError, TimeoutError) as exc:
        service_missing("A private Redis", str(exc))
    yield server
    server.stop()


@pytest.fixture
def faulty_proxy(stripe_emulator):
    """A TCP proxy in front of the Stripe emulator that a test can switch to down or slow."""
    from tests.faults import FaultyProxy

    parts = urlsplit(stripe_emulator.base_url)
    proxy = FaultyProxy((parts.hostname, parts.port))
    yield proxy
    proxy.close()
