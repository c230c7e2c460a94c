"""docker-compose.yml, its demo override and the Dockerfile cannot be run here (no Docker engine), so their
shape is checked by reading them: the production stack ships no demo data, no emulator, no default secret
and no test tools; the demo is an explicit opt-in."""

import re
from pathlib import Path

import pytest
import yaml

from marketplace.config import PUBLIC_SECRETS

ROOT = Path(__file__).resolve().parent.parent


def _compose(name="docker-compose.yml"):
    return yaml.safe_load((ROOT / name).read_text())


def _dockerfile_stages() -> dict[str, str]:
    """Each build stage's text, by its name (``FROM … AS name``)."""
    text = (ROOT / "Dockerfile").read_text()
    stages, name = {}, None
    for line in text.splitlines():
        match = re.match(r"FROM\s+\S+(?:\s+AS\s+(\S+))?", line, re.IGNORECASE)
        if match:
            name = match.group(1) or f"stage{len(stages)}"
            stages[name] = ""
        if name:
            stages[name] += line + "\n"
    return stages


def test_compose_has_every_service_with_health_checks_and_a_migration_step():
    services = _compose()["services"]
    assert set(services) >= {"web", "worker", "beat", "postgres", "redis", "migrate"}
    for name in ("web", "worker", "postgres", "redis"):
        assert "healthcheck" in services[name], name
    for name in ("web", "worker", "beat"):
        depends = services[name]["depends_on"]
        assert depends["migrate"]["condition"] == "service_completed_successfully"
        assert services[name]["environment"]["DATABASE_URL"].startswith("postgresql://")
        assert services[name]["environment"]["CELERY_BROKER_URL"].startswith("redis://")
    assert "gunicorn" in services["web"]["command"]
    for name, service in services.items():  # published ports stay on the host's loopback
        for port in service.get("ports", []):
            assert port.startswith("127.0.0.1:"), name


def test_the_production_stack_seeds_no_demo_and_runs_no_emulator():
    services = _compose()["services"]
    assert services["migrate"]["command"] == ["marketplace", "db", "upgrade"]
    text = (ROOT / "docker-compose.yml").read_text()
    commands = " ".join(" ".join(s.get("command") or []) if isinstance(s.get("command"), list) else
                        str(s.get("command") or "") for s in services.values())
    assert "seed-demo" not in commands
    assert "stripe" not in services and "stripe_emulator" not in commands
    for value in PUBLIC_SECRETS - {"x", "dev", "secret", "development"}:
        assert value not in text, value
    assert "127.0.0.1:8420" not in text and "http://stripe" not in text


def test_the_production_stack_keeps_cookies_secure_and_production_rules():
    for name in ("web", "worker", "beat", "migrate"):
        env = _compose()["services"][name]["environment"]
        assert env["TANHUI_ENV"] == "production", name
        assert "SESSION_COOKIE_SECURE" not in env, name  # the default: on outside development
        assert env["STRIPE_API_BASE"] == "${STRIPE_API_BASE:-https://api.stripe.com}"
        for secret in ("STRIPE_SECRET_KEY", "STRIPE_PUBLISHABLE_KEY", "STRIPE_WEBHOOK_SECRET"):
            assert env[secret] == f"${{{secret}:-}}"  # empty unless given: the application refuses, naming it
        assert env["SECRET_KEY"].startswith("${SECRET_KEY:?")


def test_the_demo_is_an_explicit_override_with_the_emulator_and_the_seed():
    demo = _compose("docker-compose.demo.yml")["services"]
    assert demo["seed-demo"]["command"] == ["marketplace", "seed-demo"]
    assert demo["seed-demo"]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert demo["stripe"]["build"]["target"] == "stripe-emulator"
    for name in ("migrate", "web", "worker", "beat", "seed-demo"):
        assert demo[name]["environment"]["TANHUI_ENV"] == "demo", name
    for port in demo["stripe"]["ports"]:
        assert port.startswith("127.0.0.1:")


def test_the_production_image_is_multi_stage_without_test_tools():
    stages = _dockerfile_stages()
    assert list(stages)[-1] == "app"  # the default target is the last stage
    app = stages["app"]
    assert "FROM python:" in app  # a fresh base, not the build stage with its compilers and caches
    assert "requirements-dev.lock" not in app and "pip install" not in app
    assert not re.search(r"^COPY\s+\.\s", app, re.MULTILINE), "the whole context (tests, tools, bench) is copied"
    for kept_out in ("tests", "bench", "tools"):
        assert not re.search(rf"^COPY\s+(\S+\s+)*\.?/?{kept_out}\b", app, re.MULTILINE), kept_out
    assert "--from=build /opt/venv" in app and "USER tanhui" in app
    assert "requirements-dev.lock" not in stages["build"]
    assert "requirements-dev.lock" in stages["stripe-emulator"]


@pytest.mark.parametrize("lock", ["requirements.lock"])
def test_the_runtime_lock_has_no_test_tools(lock):
    names = {line.split("==")[0].strip().lower() for line in (ROOT / lock).read_text().splitlines()
             if "==" in line and not line.startswith((" ", "#"))}
    assert not names & {"pytest", "localstripe", "playwright", "hypothesis", "schemathesis", "ruff", "honcho"}
