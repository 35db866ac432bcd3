"""The compose file's structure, checked without a Docker engine: health checks, images, ports and settings."""

import re
from pathlib import Path

import pytest
import yaml

from tests.support.infrastructure import ROOT

DEPLOY = ROOT / "deploy"
COMPOSE = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
SERVICES = COMPOSE["services"]
ONE_SHOT_JOBS = {"demo-seed"}
"""Jobs that run once and exit (restart: no); a health check has nothing to watch in them."""
APPS = {"price": ("price.settings", "PRICE_", 8001), "portfolio": ("portfolio.settings", "PORTFOLIO_", 8002),
        "gateway": ("gateway.settings", "GATEWAY_", 8000), "web": ("bitfolio_web.settings", "WEB_", 8080)}


def test_every_long_running_service_has_a_health_check() -> None:
    for name, service in SERVICES.items():
        if name in ONE_SHOT_JOBS:
            assert service.get("restart") == "no", name
            continue
        assert service.get("healthcheck", {}).get("test"), f"{name} has no health check"


def test_every_built_image_comes_from_a_dockerfile_that_exists_multi_stage_non_root_with_healthcheck() -> None:
    built = [s for s in SERVICES.values() if "build" in s]
    assert len(built) >= 4
    for service in built:
        dockerfile = (DEPLOY / service["build"]["context"] / service["build"]["dockerfile"]).resolve()
        assert dockerfile.exists(), dockerfile
        text = dockerfile.read_text()
        assert len(re.findall(r"^FROM ", text, re.M)) >= 2, f"{dockerfile.name} is not multi-stage"
        assert re.search(r"^USER (?!root)\S+", text, re.M), f"{dockerfile.name} runs as root"
        assert "HEALTHCHECK" in text, f"{dockerfile.name} has no HEALTHCHECK"
        for copied in re.findall(r"^COPY (?!--from)(\S+)", text, re.M):
            assert (ROOT / copied).exists(), f"{dockerfile.name} copies {copied}, which does not exist"


def test_depends_on_waits_for_health() -> None:
    for name, service in SERVICES.items():
        for dependency, condition in service.get("depends_on", {}).items():
            assert dependency in SERVICES, (name, dependency)
            assert condition["condition"] == "service_healthy", (name, dependency)


@pytest.mark.parametrize("name", list(APPS))
def test_ports_and_environment_agree_with_the_services_settings(name: str) -> None:
    module_name, prefix, default_port = APPS[name]
    settings_class = __import__(module_name, fromlist=["Settings"]).Settings
    fields = {prefix + field.upper() for field in settings_class.model_fields}
    service = SERVICES[name]
    environment = service["environment"]
    unknown = [key for key in environment if key not in fields]
    assert not unknown, f"{name} sets variables its Settings does not read: {unknown}"
    assert settings_class.model_fields["http_port"].default == default_port
    assert int(environment[f"{prefix}HTTP_PORT"]) == default_port
    published = [p for p in service.get("ports", []) + service.get("expose", [])]
    assert any(str(p).split(":")[-1] == str(default_port) for p in published), (name, published)
    assert str(default_port) in str(service["healthcheck"]["test"])
    dockerfile = (DEPLOY / service["build"]["dockerfile"].split("/")[-1]).read_text()
    assert f"EXPOSE {default_port}" in dockerfile
    assert f"{prefix}DATABASE_URL" not in environment or "postgres:5432" in environment[f"{prefix}DATABASE_URL"]


def test_each_service_has_its_own_database_created_by_the_init_script() -> None:
    init = (DEPLOY / "postgres-init.sql").read_text()
    for name in ("price", "portfolio", "gateway"):
        assert f"CREATE DATABASE bitfolio_{name};" in init
        assert SERVICES[name]["environment"][f"{APPS[name][1]}DATABASE_URL"].endswith(f"/bitfolio_{name}")


def test_secrets_are_required_not_defaulted() -> None:
    assert "?" in SERVICES["gateway"]["environment"]["GATEWAY_JWT_SECRET"]
    assert "?" in SERVICES["web"]["environment"]["WEB_STORAGE_SECRET"]
    assert Path(DEPLOY / "compose.yaml").read_text().count("_ENV: prod") == 5
