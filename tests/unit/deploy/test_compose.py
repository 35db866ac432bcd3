"""The compose file's structure, checked without a Docker engine: health checks, images, ports and settings."""

import ipaddress
import json
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


# ---------------------------------------------------------------- exposure, secrets and broker users (issue 11)
COMPOSE_TEXT = (DEPLOY / "compose.yaml").read_text()
ENV_EXAMPLE = (DEPLOY / ".env.example").read_text()
DEFINITIONS = json.loads((DEPLOY / "rabbitmq" / "definitions.json").read_text())
RABBIT_INIT = (DEPLOY / "rabbitmq" / "init.sh").read_text()
BUS_CLIENTS = {"price": "PRICE_RABBIT_URL", "portfolio": "PORTFOLIO_RABBIT_URL", "gateway": "GATEWAY_RABBIT_URL",
               "web": "WEB_RABBIT_URL"}
CREDENTIALS_IN_URL = re.compile(r"://(?P<user>[^:/@]+):(?P<password>[^@]*)@")


def test_only_the_gateway_and_the_dashboard_are_published() -> None:
    published = {name for name, service in SERVICES.items() if service.get("ports")}
    assert published == {"gateway", "web"}
    for name in published:
        for binding in SERVICES[name]["ports"]:
            host_address = str(binding).rsplit(":", 2)[0]
            assert "127.0.0.1" in host_address, f"{name} publishes {binding} on every interface by default"


def test_broker_database_and_inner_services_live_on_an_internal_network_only() -> None:
    assert COMPOSE["networks"]["internal"]["internal"] is True
    for name in ("rabbitmq", "postgres", "price", "portfolio", "demo-seed"):
        assert SERVICES[name]["networks"] == ["internal"], name
    for name in ("gateway", "web"):
        assert "internal" in SERVICES[name]["networks"], name


def _secret_values() -> list[tuple[str, str, str]]:
    """(service, variable, value) for every password, secret or credential-carrying URL in the file."""
    found = []
    for name, service in SERVICES.items():
        for key, value in service.get("environment", {}).items():
            text = str(value)
            if any(word in key for word in ("PASSWORD", "PASS", "SECRET")) or CREDENTIALS_IN_URL.search(text):
                found.append((name, key, text))
    return found


def test_no_secret_is_written_in_the_file_and_compose_refuses_to_start_without_each() -> None:
    secrets = _secret_values()
    assert len(secrets) >= 12
    for name, key, value in secrets:
        credentials = CREDENTIALS_IN_URL.search(value)
        secret = credentials["password"] if credentials else value
        assert re.fullmatch(r"\$\{[A-Z_]+:\?[^}]*\}", secret), f"{name}.{key} is not required from the environment"


def test_every_required_variable_is_documented_in_the_env_example() -> None:
    required = set(re.findall(r"\$\{([A-Z_]+):\?", COMPOSE_TEXT))
    documented = set(re.findall(r"^([A-Z_]+)=", ENV_EXAMPLE, re.M))
    assert required and required <= documented, required - documented
    assert not re.search(r"^(?!BITFOLIO_BIND|GATEWAY_CORS)[A-Z_]+=\S", ENV_EXAMPLE, re.M), "the example holds a value"


def test_gateway_runs_with_production_settings_and_a_secret_from_the_environment() -> None:
    for name in ("gateway", "demo-seed"):
        environment = SERVICES[name]["environment"]
        assert environment["GATEWAY_ENV"] == "prod"
        assert environment["GATEWAY_JWT_SECRET"].startswith("${GATEWAY_JWT_SECRET:?")


def test_each_service_reaches_the_broker_as_its_own_user_created_with_its_own_password() -> None:
    users = {}
    for name, variable in BUS_CLIENTS.items():
        credentials = CREDENTIALS_IN_URL.search(SERVICES[name]["environment"][variable])
        assert credentials, f"{name} connects without a user"
        users[name] = credentials["user"]
        password_variable = re.fullmatch(r"\$\{([A-Z_]+):\?[^}]*\}", credentials["password"])[1]
        assert f'ensure_user {credentials["user"]} "${password_variable}"' in RABBIT_INIT
        assert password_variable in SERVICES["rabbitmq"]["environment"]
    assert users == {name: name for name in BUS_CLIENTS}
    assert SERVICES["demo-seed"]["environment"]["GATEWAY_RABBIT_URL"] == SERVICES["gateway"]["environment"][
        "GATEWAY_RABBIT_URL"]
    assert {p["user"] for p in DEFINITIONS["permissions"]} == set(users.values())
    assert "import_definitions /etc/bitfolio/definitions.json" in RABBIT_INIT
    assert SERVICES["rabbitmq"]["entrypoint"] == ["sh", "/etc/bitfolio/init.sh"]
    assert "./rabbitmq:/etc/bitfolio:ro" in SERVICES["rabbitmq"]["volumes"]


def _may(user: str, permission: str, resource: str) -> bool:
    """RabbitMQ's check: the user's regex for that permission matches the resource name."""
    (entry,) = [p for p in DEFINITIONS["permissions"] if p["user"] == user]
    return re.search(entry[permission], resource) is not None


def _may_publish(user: str, exchange: str, routing_key: str) -> bool:
    topic = [t for t in DEFINITIONS["topic_permissions"] if t["user"] == user and t["exchange"] == exchange]
    return _may(user, "write", exchange) and all(re.search(t["write"], routing_key) for t in topic)


@pytest.mark.parametrize(("exchange", "routing_key", "allowed"), [
    ("bitfolio.commands", "transaction.record", {"gateway"}),
    ("bitfolio.commands", "portfolio.delete", {"gateway"}),
    ("bitfolio.commands", "price.range", {"gateway", "portfolio"}),
    ("bitfolio.events", "portfolio.updated.0123abcd", {"portfolio"}),
    ("bitfolio.events", "price.requested", {"portfolio"}),
    ("bitfolio.events", "price.ticked", {"price"}),
    ("bitfolio.events", "price.resolved", {"price"}),
    ("amq.default", "rpc.reply.0123abcd", {"price", "portfolio"}),
])
def test_only_the_service_that_owns_a_message_may_publish_it(exchange: str, routing_key: str,
                                                             allowed: set[str]) -> None:
    assert {user for user in BUS_CLIENTS if _may_publish(user, exchange, routing_key)} == allowed


def test_the_dashboard_only_listens() -> None:
    assert not any(_may("web", "write", exchange) for exchange in ("bitfolio.events", "bitfolio.commands",
                                                                   "bitfolio.dlx", "amq.default"))
    assert not any(_may("web", "read", queue) for queue in ("portfolio.commands", "price.requests"))
    assert _may("web", "read", "bitfolio.events") and _may("web", "read", "amq.gen-Xy1")


def test_the_gateway_trusts_x_forwarded_for_only_from_the_dashboards_fixed_address() -> None:
    compose = COMPOSE
    web_address = compose["services"]["web"]["networks"]["internal"]["ipv4_address"]
    trusted = json.loads(compose["services"]["gateway"]["environment"]["GATEWAY_TRUSTED_PROXIES"])
    assert trusted == [web_address]
    subnet = compose["networks"]["internal"]["ipam"]["config"][0]["subnet"]
    assert ipaddress.ip_address(web_address) in ipaddress.ip_network(subnet)
