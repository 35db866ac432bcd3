"""scripts/services_up.py's decision: start, install with apt, start in Docker, or print the exact commands."""

import subprocess

import pytest
import yaml

from scripts import services_up
from scripts.services_up import DOCKER_UP, START, Machine, Plan, plan_for

BOTH = ["PostgreSQL", "RabbitMQ"]


def machine(*, root: bool = False, apt: bool = False, docker: bool = False, brew: bool = False,
            installed: tuple[str, ...] = ()) -> Machine:
    return Machine(is_root=root, apt=apt, docker=docker, brew=brew, installed=frozenset(installed))


def test_installed_but_down_servers_are_started() -> None:
    plan = plan_for(BOTH, machine(apt=True, root=True, installed=tuple(BOTH)))
    assert plan == Plan(plan.summary, (START["PostgreSQL"], START["RabbitMQ"]), run=True)


def test_as_root_on_debian_the_missing_servers_are_installed_with_apt_then_started() -> None:
    plan = plan_for(BOTH, machine(apt=True, root=True, docker=True))
    assert plan.run
    assert plan.commands[0] == "apt-get update -q"
    assert plan.commands[1].endswith("apt-get install -y -q postgresql rabbitmq-server")
    assert any("pg_hba.conf" in command and "127.0.0.1/32 trust" in command for command in plan.commands)
    assert plan.commands[-2:] == (START["PostgreSQL"], START["RabbitMQ"])


def test_only_the_missing_package_is_installed_and_an_installed_one_is_not_reconfigured() -> None:
    plan = plan_for(BOTH, machine(apt=True, root=True, installed=("PostgreSQL",)))
    assert plan.commands[1].endswith("install -y -q rabbitmq-server")
    assert not any("pg_hba" in command for command in plan.commands)
    assert plan.commands[-2:] == (START["PostgreSQL"], START["RabbitMQ"])


def test_without_root_but_with_docker_both_start_from_the_local_compose_file() -> None:
    plan = plan_for(["RabbitMQ"], machine(apt=True, docker=True))
    assert plan == Plan(plan.summary, (DOCKER_UP,), run=True)
    local = yaml.safe_load(services_up.LOCAL_COMPOSE.read_text())["services"]
    assert set(local) == {"postgres", "rabbitmq"}
    for service in local.values():
        assert all(str(port).startswith("127.0.0.1:") for port in service["ports"])


def test_on_debian_without_root_or_docker_the_exact_sudo_commands_are_printed_not_run() -> None:
    plan = plan_for(["PostgreSQL"], machine(apt=True))
    assert not plan.run
    assert plan.commands[0] == "sudo apt-get update -q"
    assert plan.commands[1] == "sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql"
    assert plan.commands[-1] == f"sudo {START['PostgreSQL']}"


def test_elsewhere_brew_or_docker_commands_are_printed() -> None:
    assert plan_for(BOTH, machine(brew=True)).commands == (
        "brew install postgresql@15 && brew services start postgresql@15",
        "brew install rabbitmq && brew services start rabbitmq")
    bare = plan_for(BOTH, machine())
    assert not bare.run and bare.commands == (DOCKER_UP,)


@pytest.fixture
def fake_machine(monkeypatch: pytest.MonkeyPatch) -> dict:
    state = {"up": set(), "ran": [], "machine": machine(apt=True, root=True)}
    monkeypatch.setattr(services_up, "answers", lambda port, host="127.0.0.1": port in state["up"])
    monkeypatch.setattr(services_up.Machine, "inspect", classmethod(lambda cls: state["machine"]))
    monkeypatch.setattr(services_up.time, "sleep", lambda _: None)

    def run(command: str, **_: object) -> subprocess.CompletedProcess:
        state["ran"].append(command)
        if command in START.values():
            state["up"].add(5432 if "pg_ctlcluster" in command else 5672)
        return subprocess.CompletedProcess(command, 0)
    monkeypatch.setattr(services_up.subprocess, "run", run)
    return state


def test_main_runs_the_plan_and_succeeds_once_both_answer(fake_machine: dict) -> None:
    assert services_up.main() == 0
    assert fake_machine["ran"][-2:] == [START["PostgreSQL"], START["RabbitMQ"]]


def test_main_prints_the_commands_and_fails_when_it_cannot_do_the_set_up(fake_machine: dict, capsys) -> None:
    fake_machine["machine"] = machine(apt=True)
    assert services_up.main() == 1
    assert fake_machine["ran"] == []
    assert "sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql rabbitmq-server" in (
        capsys.readouterr().out)


def test_main_does_nothing_when_both_answer(fake_machine: dict) -> None:
    fake_machine["up"] = {5432, 5672}
    assert services_up.main() == 0 and fake_machine["ran"] == []
