"""Bring up the local PostgreSQL and RabbitMQ that `make run` and the tests need: start, install, or say how.

What it does when one is down depends on the machine (decided by `plan_for`, a pure function):
  installed here                  start it;
  not installed, root with apt    install it with apt-get (postgresql, rabbitmq-server), then start it;
  a Docker engine answers         start both from deploy/compose.local.yaml (loopback only);
  otherwise                       print the exact commands to run, and fail.
"""

import os
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PORTS = {"PostgreSQL": 5432, "RabbitMQ": 5672}
APT_PACKAGES = {"PostgreSQL": "postgresql", "RabbitMQ": "rabbitmq-server"}
NEWEST_CLUSTER = "$(ls /etc/postgresql | sort -V | tail -n 1)"
START = {
    "PostgreSQL": f"pg_ctlcluster --skip-systemctl-redirect {NEWEST_CLUSTER} main start",
    "RabbitMQ": "rabbitmq-server -detached",
}
# A fresh Debian cluster asks for a password on 127.0.0.1; the local default URL (postgres@127.0.0.1) has none.
# Only for a cluster this script has just installed, and only for loopback connections.
TRUST_LOOPBACK = (f"sed -i '1i host all all 127.0.0.1/32 trust' /etc/postgresql/{NEWEST_CLUSTER}/main/pg_hba.conf")
LOCAL_COMPOSE = ROOT / "deploy" / "compose.local.yaml"
DOCKER_UP = f"docker compose -f {LOCAL_COMPOSE.relative_to(ROOT)} up -d --wait"
APT_ENV = "DEBIAN_FRONTEND=noninteractive"


@dataclass(frozen=True)
class Machine:
    """What this machine offers for the set-up."""

    is_root: bool
    apt: bool  # Debian or Ubuntu, with apt-get
    docker: bool  # a Docker engine answers
    brew: bool
    installed: frozenset[str]  # of PORTS' names whose server is installed here

    @classmethod
    def inspect(cls) -> "Machine":
        installed = {name for name, found in (("PostgreSQL", Path("/etc/postgresql").is_dir() and any(
            Path("/etc/postgresql").iterdir())), ("RabbitMQ", shutil.which("rabbitmq-server") is not None)) if found}
        return cls(is_root=os.geteuid() == 0,
                   apt=shutil.which("apt-get") is not None and Path("/etc/debian_version").exists(),
                   docker=docker_answers(), brew=shutil.which("brew") is not None, installed=frozenset(installed))


@dataclass(frozen=True)
class Plan:
    """Shell commands that bring the missing servers up; `run` False means: print them for the user instead."""

    summary: str
    commands: tuple[str, ...]
    run: bool


def plan_for(missing: list[str], machine: Machine) -> Plan:
    """Decide how to bring up the servers in `missing` (names of PORTS) on this machine."""
    not_installed = [name for name in missing if name not in machine.installed]
    start = tuple(START[name] for name in missing)
    names = " and ".join(missing)
    if not not_installed:
        return Plan(f"{names} installed but down; starting", start, run=True)
    packages = " ".join(APT_PACKAGES[name] for name in not_installed)
    install = ("apt-get update -q", f"{APT_ENV} apt-get install -y -q {packages}")
    trust = (TRUST_LOOPBACK,) if "PostgreSQL" in not_installed else ()
    if machine.apt and machine.is_root:
        return Plan(f"{' and '.join(not_installed)} not installed; installing with apt-get and starting",
                    install + trust + start, run=True)
    if machine.docker:
        return Plan(f"{names} not running; starting both in Docker ({LOCAL_COMPOSE.name})", (DOCKER_UP,), run=True)
    if machine.apt:
        return Plan(f"{names} not running here. Install and start {'them' if len(missing) > 1 else 'it'} with:",
                    tuple(f"sudo {command}" for command in install + trust + start), run=False)
    if machine.brew:
        formulas = {"PostgreSQL": "postgresql@15", "RabbitMQ": "rabbitmq"}
        return Plan(f"{names} not running here. Install and start {'them' if len(missing) > 1 else 'it'} with:",
                    tuple(f"brew install {formulas[name]} && brew services start {formulas[name]}"
                          for name in missing), run=False)
    return Plan(f"{names} not running here. Install PostgreSQL 15 (user postgres, trusted on 127.0.0.1) and "
                "RabbitMQ 3.10 (guest/guest), or Docker and then run:", (DOCKER_UP,), run=False)


def answers(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as probe:
        probe.settimeout(1)
        return probe.connect_ex((host, port)) == 0


def docker_answers() -> bool:
    if shutil.which("docker") is None:
        return False
    try:
        return subprocess.run(["docker", "info"], capture_output=True, timeout=10).returncode == 0
    except subprocess.TimeoutExpired:
        return False


def wait_for(names: list[str], seconds: float = 90) -> list[str]:
    """The names still not answering after `seconds`."""
    deadline = time.monotonic() + seconds
    while (down := [name for name in names if not answers(PORTS[name])]) and time.monotonic() < deadline:
        time.sleep(1)
    return down


def main() -> int:
    missing = [name for name, port in PORTS.items() if not answers(port)]
    if not missing:
        return 0
    plan = plan_for(missing, Machine.inspect())
    print(plan.summary, flush=True)
    if not plan.run:
        for command in plan.commands:
            print(f"  {command}")
        return 1
    for command in plan.commands:
        print(f"  $ {command}", flush=True)
        if subprocess.run(command, shell=True, cwd=ROOT, check=False).returncode != 0:
            print(f"`{command}` failed; see its output above.", file=sys.stderr)
            return 1
    still_down = wait_for(missing)
    for name in still_down:
        print(f"{name} still does not answer on 127.0.0.1:{PORTS[name]}; see its log, or start it by hand.",
              file=sys.stderr)
    return 1 if still_down else 0


if __name__ == "__main__":
    sys.exit(main())
