"""Start the local PostgreSQL and RabbitMQ when they are down, or say how to start them."""

import socket
import subprocess
import sys
import time
from pathlib import Path

SERVICES = {
    "PostgreSQL": (5432, "pg_ctlcluster --skip-systemctl-redirect {version} main start"),
    "RabbitMQ": (5672, "rabbitmq-server -detached"),
}


def answers(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as probe:
        probe.settimeout(1)
        return probe.connect_ex((host, port)) == 0


def start_command(name: str, template: str) -> str:
    if name == "PostgreSQL":
        versions = sorted(p.name for p in Path("/etc/postgresql").glob("*")) if Path("/etc/postgresql").exists() else []
        return template.format(version=versions[-1]) if versions else ""
    return template


def main() -> int:
    for name, (port, template) in SERVICES.items():
        if answers(port):
            continue
        command = start_command(name, template)
        if command:
            print(f"{name} is down on 127.0.0.1:{port}; starting it: {command}")
            subprocess.run(command, shell=True, check=False)
            for _ in range(60):
                if answers(port):
                    break
                time.sleep(1)
        if not answers(port):
            print(
                f"{name} cannot be reached on 127.0.0.1:{port}. Start it locally ({command or 'see its docs'}) "
                "or run: docker compose -f deploy/compose.yaml up -d postgres rabbitmq",
                file=sys.stderr,
            )
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
