"""Settings read from the environment, with defaults that make the embedded setup work."""

from __future__ import annotations

import os
import secrets
from datetime import timedelta
from pathlib import Path

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
    instance_path.mkdir(parents=True, exist_ok=True)
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
    instance_path.mkdir(parents=True, exist_ok=True)

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
        "PERMANENT_SESSION_LIFETIME": timedelta(hours=int(env("SESSION_HOURS", "12"))),
        "WTF_CSRF_ENABLED": True,
        # A CSRF token lives as long as the session, so a form left open over lunch still posts.
        "WTF_CSRF_TIME_LIMIT": None,
        # Uploaded verification documents are the largest bodies we accept.
        "MAX_CONTENT_LENGTH": int(env("MAX_CONTENT_LENGTH", str(20 * 1024 * 1024))),
        "UPLOAD_FOLDER": env("UPLOAD_FOLDER", str(instance_path / "uploads")),
        "BABEL_DEFAULT_LOCALE": "zh_CN",
        "BABEL_DEFAULT_TIMEZONE": env("TANHUI_TIMEZONE", "Asia/Shanghai"),
        "LANGUAGES": ["zh_CN", "en"],
        "RATELIMIT_STORAGE_URI": env("RATELIMIT_STORAGE_URI", env("REDIS_URL", "") or "memory://"),
        "RATELIMIT_HEADERS_ENABLED": True,
        # A sliding window: no burst of twice the limit across a minute boundary (and no flaky edge in tests).
        "RATELIMIT_STRATEGY": env("RATELIMIT_STRATEGY", "moving-window"),
        "LOGIN_RATE_LIMIT": env("LOGIN_RATE_LIMIT", "10 per minute"),
        # Outbox rows older than this with no publish are re-driven by the sweeper.
        "OUTBOX_SWEEP_AFTER_SECONDS": int(env("OUTBOX_SWEEP_AFTER_SECONDS", "30")),
        "OUTBOX_PUBLISH_ON_COMMIT": _bool("OUTBOX_PUBLISH_ON_COMMIT", True),
        "BUFFER_POOL_PERCENT": int(env("BUFFER_POOL_PERCENT", "10")),
        # Neutralisation must be complete this many days after an event ends (provincial rules, ISO 14068-1).
        "NEUTRALITY_DEADLINE_DAYS": int(env("NEUTRALITY_DEADLINE_DAYS", "365")),
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
