"""docker-compose.yml cannot be run here (no Docker engine), so its shape is checked by reading it."""

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def test_compose_has_every_service_with_health_checks_and_a_migration_step():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert set(services) >= {"web", "worker", "beat", "postgres", "redis", "stripe", "migrate"}
    for name in ("web", "worker", "postgres", "redis", "stripe"):
        assert "healthcheck" in services[name], name
    for name in ("web", "worker", "beat"):
        depends = services[name]["depends_on"]
        assert depends["migrate"]["condition"] == "service_completed_successfully"
        assert services[name]["environment"]["DATABASE_URL"].startswith("postgresql://")
        assert services[name]["environment"]["CELERY_BROKER_URL"].startswith("redis://")
    assert "gunicorn" in services["web"]["command"]
    assert services["migrate"]["command"][-1].startswith("marketplace db upgrade")
    for name, service in services.items():  # published ports stay on the host's loopback
        for port in service.get("ports", []):
            assert port.startswith("127.0.0.1:"), name
