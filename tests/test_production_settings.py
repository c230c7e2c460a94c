"""Production refuses to start on a default, empty or test secret, key or URL, naming the setting; the
development, test and demo environments opt in to the embedded defaults explicitly."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from marketplace import create_app
from marketplace.config import InsecureConfiguration, production_problems

ROOT = Path(__file__).resolve().parent.parent

#: A production configuration with nothing wrong in it.
SOUND = {
    "TANHUI_ENV": "production",
    "SECRET_KEY": "s" * 48,
    "STRIPE_SECRET_KEY": "sk_live_51H0aBcDeFgHiJkLmNoPqRsTuV",
    "STRIPE_PUBLISHABLE_KEY": "pk_live_51H0aBcDeFgHiJkLmNoPqRsTuV",
    "STRIPE_WEBHOOK_SECRET": "whsec_" + "k" * 32,
    "STRIPE_API_BASE": "https://api.stripe.com",
    "STRIPE_JS_URL": "https://js.stripe.com/v3/",
    "PUBLIC_BASE_URL": "https://tanhui.lishui.gov.cn",
    "BANK_ACCOUNT": "1907 0101 0400 1234 5",
    "BANK_PAYEE": "丽水市生态环境局碳汇交易结算专户",
    "BANK_NAME": "中国农业银行丽水分行",
    "SESSION_COOKIE_SECURE": True,
    "REMEMBER_COOKIE_SECURE": True,
}

#: (setting, a value production must refuse) — every default of config.py, empty values, test values.
REFUSED = [
    ("SECRET_KEY", ""), ("SECRET_KEY", "test-secret-key"), ("SECRET_KEY", "short-but-random-9f3k"),
    ("STRIPE_SECRET_KEY", "sk_test_tanhui_local"), ("STRIPE_SECRET_KEY", ""), ("STRIPE_SECRET_KEY", "sk_test_51abc"),
    ("STRIPE_PUBLISHABLE_KEY", "pk_test_tanhui_local"), ("STRIPE_PUBLISHABLE_KEY", ""),
    ("STRIPE_WEBHOOK_SECRET", "whsec_tanhui_local"), ("STRIPE_WEBHOOK_SECRET", ""),
    ("STRIPE_WEBHOOK_SECRET", "whsec_" + "k" * 32 + ",whsec_tanhui_local"),  # a rotation list counts entry by entry
    ("STRIPE_API_BASE", "http://127.0.0.1:8420"), ("STRIPE_API_BASE", "http://stripe:8420"),
    ("STRIPE_API_BASE", ""), ("STRIPE_API_BASE", "https://api.stripe.com.evil.example"),
    ("STRIPE_JS_URL", "http://127.0.0.1:8420/js.stripe.com/v3/"), ("STRIPE_JS_URL", ""),
    ("PUBLIC_BASE_URL", "http://127.0.0.1:5000"), ("PUBLIC_BASE_URL", "http://tanhui.lishui.gov.cn"),
    ("PUBLIC_BASE_URL", ""),
    ("BANK_ACCOUNT", "19-0000-0000-0000-0000"),
    ("BANK_PAYEE", ""), ("BANK_NAME", " "),
    ("SESSION_COOKIE_SECURE", False),
]


def test_a_sound_production_configuration_starts(base_config):
    app = create_app({**base_config, **SOUND})
    assert app.config["TANHUI_ENV"] == "production"


@pytest.mark.parametrize(("setting", "value"), REFUSED)
def test_production_refuses_a_default_empty_or_test_value_naming_the_setting(base_config, setting, value):
    with pytest.raises(InsecureConfiguration) as refused:
        create_app({**base_config, **SOUND, setting: value})
    assert len(refused.value.problems) == 1, refused.value.problems
    assert refused.value.problems[0].startswith(setting)
    assert setting in str(refused.value)


def test_production_on_the_shipped_defaults_names_every_setting_at_once(monkeypatch, tmp_path):
    for name in ("SECRET_KEY", "STRIPE_SECRET_KEY", "STRIPE_PUBLISHABLE_KEY", "STRIPE_WEBHOOK_SECRET", "STRIPE_API_BASE",
                 "STRIPE_JS_URL", "PUBLIC_BASE_URL", "BANK_ACCOUNT", "SESSION_COOKIE_SECURE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("TANHUI_ENV", "production")
    with pytest.raises(InsecureConfiguration) as refused:
        create_app({"INSTANCE_PATH": str(tmp_path), "SQLALCHEMY_DATABASE_URI": "sqlite://"})
    named = {problem.split()[0] for problem in refused.value.problems}
    # The instance folder's generated SECRET_KEY is random and long: not a default anyone knows.
    assert named == {"STRIPE_SECRET_KEY", "STRIPE_PUBLISHABLE_KEY", "STRIPE_WEBHOOK_SECRET", "STRIPE_API_BASE",
                     "STRIPE_JS_URL", "PUBLIC_BASE_URL", "BANK_ACCOUNT"}


@pytest.mark.parametrize("environment", ["prod", "PRODUCTION", "staging", ""])
def test_an_unknown_environment_is_held_to_production_rules(environment):
    assert production_problems({**SOUND, "TANHUI_ENV": environment}) == []
    assert production_problems({**SOUND, "TANHUI_ENV": environment, "STRIPE_WEBHOOK_SECRET": "whsec_tanhui_local"})


@pytest.mark.parametrize("environment", ["development", "test", "demo"])
def test_development_test_and_the_demo_opt_in_to_the_embedded_defaults(environment):
    assert production_problems({"TANHUI_ENV": environment}) == []


def test_the_wsgi_entry_point_exits_naming_the_setting(tmp_path):
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("STRIPE_", "PUBLIC_BASE_URL", "BANK_", "SESSION_COOKIE"))}
    env.update({"TANHUI_ENV": "production", "TANHUI_INSTANCE_PATH": str(tmp_path),
                "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite'}", "SECRET_KEY": "s" * 48})
    result = subprocess.run([sys.executable, "-c", "import marketplace.wsgi"], cwd=ROOT, env=env,  # noqa: S603
                            capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert "InsecureConfiguration" in result.stderr
    assert "STRIPE_WEBHOOK_SECRET is empty, the development default" in result.stderr


def test_seed_demo_is_refused_in_production(base_config):
    app = create_app({**base_config, **SOUND})
    result = app.test_cli_runner().invoke(args=["seed-demo"])
    assert result.exit_code != 0
    assert "published password" in result.output and "TANHUI_ENV=demo" in result.output


@pytest.mark.parametrize("environment", ["production", "demo"])
def test_cookies_are_secure_and_hsts_is_on_unless_development(monkeypatch, tmp_path, environment):
    monkeypatch.delenv("SESSION_COOKIE_SECURE", raising=False)
    monkeypatch.setenv("TANHUI_ENV", environment)
    overrides = {key: value for key, value in SOUND.items() if key not in ("SESSION_COOKIE_SECURE",
                                                                              "REMEMBER_COOKIE_SECURE", "TANHUI_ENV")}
    app = create_app({"INSTANCE_PATH": str(tmp_path), "SQLALCHEMY_DATABASE_URI": "sqlite://", "SERVER_NAME": "localhost",
                      **overrides})
    assert app.config["SESSION_COOKIE_SECURE"] is True and app.config["REMEMBER_COOKIE_SECURE"] is True
    response = app.test_client().get("/healthz")
    assert response.headers["Strict-Transport-Security"].startswith("max-age=")
    monkeypatch.setenv("TANHUI_ENV", "development")
    development = create_app({"INSTANCE_PATH": str(tmp_path), "SQLALCHEMY_DATABASE_URI": "sqlite://",
                              "SERVER_NAME": "localhost"})
    assert development.config["SESSION_COOKIE_SECURE"] is False
    assert "Strict-Transport-Security" not in development.test_client().get("/healthz").headers
