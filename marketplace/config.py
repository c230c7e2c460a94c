"""Settings read from the environment, with defaults that make the embedded setup work."""

from __future__ import annotations

import os
import secrets
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_INSTANCE = PROJECT_ROOT / "instance"


def _bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    return raw.strip().lower() in {"1", "true", "yes", "on"}


def normalise_database_url(url: str) -> str:
    """Use psycopg 3 for PostgreSQL URLs written the usual way."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def instance_secret(instance_path: Path, name: str, nbytes: int = 32) -> str:
    """A secret kept in the instance folder, created (mode 0600) on first use."""
    instance_path.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = instance_path / name
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_urlsafe(nbytes))
    return path.read_text().strip()


def load_config(instance_path: Path) -> dict:
    """The application's settings: environment first, then embedded defaults."""
    env = os.environ.get
    environment = env("TANHUI_ENV", "production")
    development = environment == "development"
    instance_path.mkdir(mode=0o700, parents=True, exist_ok=True)  # keys, uploads, certificates

    stripe_base = env("STRIPE_API_BASE", "http://127.0.0.1:8420").rstrip("/")
    return {
        "TANHUI_ENV": environment,
        "SECRET_KEY": env("SECRET_KEY") or instance_secret(instance_path, "secret_key"),
        "SQLALCHEMY_DATABASE_URI": normalise_database_url(
            env("DATABASE_URL", f"sqlite:///{instance_path / 'tanhui.sqlite'}")
        ),
        # Pool pre-ping: a worker that idled through a database restart reconnects instead of failing.
        "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": True},
        # PostgreSQL: connections kept per process; at least gunicorn's --threads, or the connections
        # beyond it are closed after each request and opened again for the next.
        "DATABASE_POOL_SIZE": int(env("DATABASE_POOL_SIZE", "16")),
        "REDIS_URL": env("REDIS_URL", ""),
        # Cached public answers (marketplace.core.public_cache): in Redis (CACHE_REDIS_URL, else REDIS_URL), else
        # in each process's memory; PUBLIC_CACHE=0 draws every page live.
        "PUBLIC_CACHE": _bool("PUBLIC_CACHE", True),
        # Cached public answers for anonymous visitors replayed in front of the application (core/public_fast.py).
        "PUBLIC_FAST_PATH": _bool("PUBLIC_FAST_PATH", True),
        "CACHE_REDIS_URL": env("CACHE_REDIS_URL", ""),
        "CACHE_KEY_PREFIX": env("CACHE_KEY_PREFIX", "tanhui:"),
        # Embedded default: kombu's SQLAlchemy transport over its own SQLite file, so the broker's
        # tables never meet the application's migrations.
        "CELERY_BROKER_URL": env(
            "CELERY_BROKER_URL", f"sqla+sqlite:///{instance_path / 'celery-broker.sqlite'}"
        ),
        "CELERY_QUEUE": env("CELERY_QUEUE", "tanhui"),
        "CELERY_TASK_ALWAYS_EAGER": _bool("CELERY_TASK_ALWAYS_EAGER", False),
        "STRIPE_API_BASE": stripe_base,
        "STRIPE_SECRET_KEY": env("STRIPE_SECRET_KEY", "sk_test_tanhui_local"),
        "STRIPE_PUBLISHABLE_KEY": env("STRIPE_PUBLISHABLE_KEY", "pk_test_tanhui_local"),
        "STRIPE_WEBHOOK_SECRET": env("STRIPE_WEBHOOK_SECRET", "whsec_tanhui_local"),
        "STRIPE_JS_URL": env("STRIPE_JS_URL", f"{stripe_base}/js.stripe.com/v3/"),
        # How long one call to Stripe may take (connecting, then waiting for the answer), and how many
        # tries in all (timeouts, 5xx and 429 are retried).
        "STRIPE_CONNECT_TIMEOUT_MS": int(env("STRIPE_CONNECT_TIMEOUT_MS", "3000")),
        "STRIPE_READ_TIMEOUT_MS": int(env("STRIPE_READ_TIMEOUT_MS", "10000")),
        "STRIPE_MAX_ATTEMPTS": int(env("STRIPE_MAX_ATTEMPTS", "3")),
        # All the calls to Stripe of one web request (the pay page makes up to five, each retried) end within
        # this budget; then the payer is told to try again. Below gunicorn's timeout (30 s by default).
        "STRIPE_REQUEST_BUDGET_MS": int(env("STRIPE_REQUEST_BUDGET_MS", "20000")),
        "PUBLIC_BASE_URL": env("PUBLIC_BASE_URL", "http://127.0.0.1:5000").rstrip("/"),
        # Ed25519 private key (PKCS#8 PEM) that signs certificates; when empty, the key lives in
        # CERT_SIGNING_KEY_FILE (created 0600 on first use, replaced by `marketplace certificates rotate-key`).
        "CERT_SIGNING_KEY": env("CERT_SIGNING_KEY", ""),
        "CERT_SIGNING_KEY_FILE": env("CERT_SIGNING_KEY_FILE", str(instance_path / "signing_key.pem")),
        "MAIL_SERVER": env("MAIL_SERVER", ""),
        "MAIL_PORT": int(env("MAIL_PORT", "25")),
        "MAIL_DEFAULT_SENDER": env("MAIL_DEFAULT_SENDER", "noreply@tanhui.invalid"),
        # Session cookies: Secure everywhere but the local development server.
        "SESSION_COOKIE_SECURE": _bool("SESSION_COOKIE_SECURE", not development),
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "REMEMBER_COOKIE_SECURE": _bool("SESSION_COOKIE_SECURE", not development),
        "REMEMBER_COOKIE_HTTPONLY": True,
        # Absolute: a sign-in lasts at most this long, however busy. Idle: a session unused this long ends.
        "PERMANENT_SESSION_LIFETIME": timedelta(hours=int(env("SESSION_HOURS", "12"))),
        "SESSION_IDLE_MINUTES": int(env("SESSION_IDLE_MINUTES", "30")),
        # Roles whose users must sign in with a second step (TOTP); they enrol on their first sign-in.
        "TWO_STEP_REQUIRED_ROLES": frozenset(
            role.strip() for role in env("TWO_STEP_REQUIRED_ROLES", "bureau,operator").split(",") if role.strip()),
        # How long an e-mailed password-reset link works (it works once).
        "PASSWORD_RESET_MINUTES": int(env("PASSWORD_RESET_MINUTES", "60")),
        # Reverse proxies (addresses or networks, comma-separated) whose X-Forwarded-For / -Proto we believe;
        # empty: the peer address is the client, forwarded headers are dropped.
        "TRUSTED_PROXIES": env("TRUSTED_PROXIES", ""),
        "WTF_CSRF_ENABLED": True,
        # A CSRF token lives as long as the session, so a form left open over lunch still posts.
        "WTF_CSRF_TIME_LIMIT": None,
        # One limit for every uploaded file (project documents, activity spreadsheets), said the same way on
        # the form, in its error and on a refused request.
        "UPLOAD_MAX_MB": int(env("UPLOAD_MAX_MB", "10")),
        # The whole request: the file plus the form's other fields and the multipart envelope (1 MiB more),
        # so a file just over the limit is answered on its form by name, not refused as a request.
        "MAX_CONTENT_LENGTH": int(env("MAX_CONTENT_LENGTH", str((int(env("UPLOAD_MAX_MB", "10")) + 1) * 1024 * 1024))),
        "UPLOAD_FOLDER": env("UPLOAD_FOLDER", str(instance_path / "uploads")),
        "BABEL_DEFAULT_LOCALE": "zh_CN",
        "BABEL_DEFAULT_TIMEZONE": env("TANHUI_TIMEZONE", "Asia/Shanghai"),
        "LANGUAGES": ["zh_CN", "en"],
        "RATELIMIT_STORAGE_URI": env("RATELIMIT_STORAGE_URI", env("REDIS_URL", "") or "memory://"),
        "RATELIMIT_HEADERS_ENABLED": True,
        # Redis down must not stop sign-in: the limits go on in this process's memory (a warning is logged)
        # until the storage answers again. Short timeouts, so a dead Redis costs a request milliseconds.
        "RATELIMIT_IN_MEMORY_FALLBACK_ENABLED": True,
        "RATELIMIT_STORAGE_OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5},
        # A sliding window: no burst of twice the limit across a minute boundary (and no flaky edge in tests).
        "RATELIMIT_STRATEGY": env("RATELIMIT_STRATEGY", "moving-window"),
        "LOGIN_RATE_LIMIT": env("LOGIN_RATE_LIMIT", "10 per minute"),
        # Failed sign-ins per account (whatever the address), beside the per-address limit above.
        "LOGIN_ACCOUNT_RATE_LIMIT": env("LOGIN_ACCOUNT_RATE_LIMIT", "20 per hour"),
        # Outbox rows older than this with no publish are re-driven by the sweeper.
        "OUTBOX_SWEEP_AFTER_SECONDS": int(env("OUTBOX_SWEEP_AFTER_SECONDS", "30")),
        "OUTBOX_PUBLISH_ON_COMMIT": _bool("OUTBOX_PUBLISH_ON_COMMIT", True),
        "BUFFER_POOL_PERCENT": int(env("BUFFER_POOL_PERCENT", "10")),
        # Neutralisation must be complete this many days after an event ends (provincial rules, ISO 14068-1).
        "NEUTRALITY_DEADLINE_DAYS": int(env("NEUTRALITY_DEADLINE_DAYS", "365")),
        # What a cooperative's statement covers: "month" or "quarter" (calendar periods, platform zone). A change
        # applies from the end of the last closed statement; closed ones are never rewritten.
        "STATEMENT_PERIOD": env("STATEMENT_PERIOD", "month"),
        # The platform's service fee until the bureau sets one on its Payouts page: percent of each order
        # (0-100, 2 places), at least the floor and at most the ceiling (fen; an empty ceiling: none).
        "PLATFORM_FEE_PERCENT": env("PLATFORM_FEE_PERCENT", "0"),
        "PLATFORM_FEE_FLOOR_FEN": int(env("PLATFORM_FEE_FLOOR_FEN", "0")),
        "PLATFORM_FEE_CEILING_FEN": env("PLATFORM_FEE_CEILING_FEN", ""),
        "RESERVATION_MINUTES": int(env("RESERVATION_MINUTES", "15")),
        "BANK_TRANSFER_RESERVATION_DAYS": int(env("BANK_TRANSFER_RESERVATION_DAYS", "5")),
        # Where buyers send bank transfers (quoting the order's reference).
        "BANK_PAYEE": env("BANK_PAYEE", "丽水市生态环境局碳汇交易结算专户"),
        "BANK_NAME": env("BANK_NAME", "中国农业银行丽水分行"),
        "BANK_ACCOUNT": env("BANK_ACCOUNT", "19-0000-0000-0000-0000"),
        # Form submission keys and API Idempotency-Keys are forgotten after this many days (daily purge).
        "IDEMPOTENCY_KEY_DAYS": int(env("IDEMPOTENCY_KEY_DAYS", "30")),
        # Paid orders whose retirement has not finished after this long are re-driven (lost task, killed worker).
        "ORDER_REDRIVE_AFTER_SECONDS": int(env("ORDER_REDRIVE_AFTER_SECONDS", "120")),
        "API_TITLE": "Tanhui API",
        "API_VERSION": "v1",
        "OPENAPI_VERSION": "3.0.3",
        "OPENAPI_URL_PREFIX": "/api/v1",
        "OPENAPI_JSON_PATH": "openapi.json",
    }


# --- production refuses development defaults -------------------------------------------------------

#: Environments that may run with the embedded defaults. Any other value of TANHUI_ENV (a typo too) is
#: held to production's rules. ``demo`` is the compose demo's explicit opt-in: the Stripe emulator, test
#: keys and seeded accounts with a published password, production's cookies and headers otherwise.
RELAXED_ENVIRONMENTS = ("development", "test", "demo")

#: Values that ship in this repository (config defaults, docker-compose, the tests, the benches).
PUBLIC_SECRETS = frozenset({
    "sk_test_tanhui_local", "pk_test_tanhui_local", "whsec_tanhui_local", "test-secret-key", "bench",
    "profile", "x", "secret", "changeme", "change-me", "dev", "development",
})
DEMO_BANK_ACCOUNT = "19-0000-0000-0000-0000"
#: A session-signing key shorter than this is guessable offline from one signed cookie.
MIN_SECRET_KEY_LENGTH = 32
#: Stripe's webhook signing secrets are ``whsec_`` and 32 characters; anything short is a placeholder.
MIN_WEBHOOK_SECRET_LENGTH = 24


class InsecureConfiguration(RuntimeError):
    """Production was asked to start with a default, empty or test setting; the message names each one."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("TANHUI_ENV=production refuses to start:\n" + "\n".join(f"  - {p}" for p in problems)
                         + "\nSet these in the environment (see README, Configuration). A local trial with "
                           "the Stripe emulator runs with TANHUI_ENV=demo.")


def _is_public_origin(url: str, *, host: str | None = None) -> bool:
    parts = urlsplit(url or "")
    hostname = (parts.hostname or "").lower()
    if parts.scheme != "https" or not hostname:
        return False
    if host is not None:
        return hostname == host
    return hostname not in {"localhost", "stripe"} and not hostname.startswith("127.") and hostname != "::1" \
        and not hostname.endswith((".local", ".localhost", ".invalid", ".example", ".test"))


def production_problems(config: dict) -> list[str]:
    """Every setting that is empty, a development default or a test value, named (empty when sound).

    Applies to production only (TANHUI_ENV not in RELAXED_ENVIRONMENTS)."""
    if config.get("TANHUI_ENV") in RELAXED_ENVIRONMENTS:
        return []
    problems = []
    secret_key = str(config.get("SECRET_KEY") or "")
    if not secret_key or secret_key in PUBLIC_SECRETS or len(secret_key) < MIN_SECRET_KEY_LENGTH:
        problems.append(f"SECRET_KEY is empty, a published value or shorter than {MIN_SECRET_KEY_LENGTH} "
                        "characters")
    stripe_key = str(config.get("STRIPE_SECRET_KEY") or "")
    if not stripe_key.startswith(("sk_live_", "rk_live_")) or stripe_key in PUBLIC_SECRETS:
        problems.append("STRIPE_SECRET_KEY is empty or a test key (production takes sk_live_… or rk_live_…)")
    publishable = str(config.get("STRIPE_PUBLISHABLE_KEY") or "")
    if not publishable.startswith("pk_live_"):
        problems.append("STRIPE_PUBLISHABLE_KEY is empty or a test key (production takes pk_live_…)")
    webhook_secrets = [s.strip() for s in str(config.get("STRIPE_WEBHOOK_SECRET") or "").split(",")]
    if not any(webhook_secrets) or any(not s or s in PUBLIC_SECRETS or len(s) < MIN_WEBHOOK_SECRET_LENGTH
                                       for s in webhook_secrets):
        problems.append("STRIPE_WEBHOOK_SECRET is empty, the development default or too short to be Stripe's "
                        "(every comma-separated value counts)")
    if not _is_public_origin(str(config.get("STRIPE_API_BASE") or ""), host="api.stripe.com"):
        problems.append("STRIPE_API_BASE is not https://api.stripe.com (the emulator's address is a development "
                        "default)")
    if not _is_public_origin(str(config.get("STRIPE_JS_URL") or ""), host="js.stripe.com"):
        problems.append("STRIPE_JS_URL is not Stripe.js from https://js.stripe.com")
    if not _is_public_origin(str(config.get("PUBLIC_BASE_URL") or "")):
        problems.append("PUBLIC_BASE_URL is empty, not https or a local address (it is printed on certificates)")
    if str(config.get("BANK_ACCOUNT") or "") in ("", DEMO_BANK_ACCOUNT):
        problems.append("BANK_ACCOUNT is empty or the demo account (buyers would transfer to it)")
    for name in ("BANK_PAYEE", "BANK_NAME"):
        if not str(config.get(name) or "").strip():
            problems.append(f"{name} is empty (the bank-transfer page shows it)")
    if not config.get("SESSION_COOKIE_SECURE") or not config.get("REMEMBER_COOKIE_SECURE"):
        problems.append("SESSION_COOKIE_SECURE is off (cookies and HSTS stay on outside development)")
    return problems


def refuse_insecure_production(config: dict) -> None:
    """Raise InsecureConfiguration naming every unsound setting, in production."""
    problems = production_problems(config)
    if problems:
        raise InsecureConfiguration(problems)
