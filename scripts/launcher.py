"""Start and stop the real services as subprocesses (used by `make run` and by the e2e, web and fault tests)."""

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent

COMMANDS = {
    "price": ["price", "serve"],
    "portfolio": ["portfolio", "serve"],
    "gateway": ["gateway", "serve"],
    "web": ["bitfolio-web", "serve"],
}
READY_PATHS = {"price": "/readyz", "portfolio": "/readyz", "gateway": "/readyz", "web": "/healthz"}
ENV_PREFIX = {"price": "PRICE", "portfolio": "PORTFOLIO", "gateway": "GATEWAY", "web": "WEB"}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class RunningService:
    name: str
    port: int
    env: dict[str, str]
    log_path: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60) -> None:
        log = self.log_path.open("ab")
        command = [str(BIN / COMMANDS[self.name][0]), *COMMANDS[self.name][1:]]
        self.process = subprocess.Popen(command, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                        start_new_session=True)
        self.wait_ready(timeout)

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.process.returncode}; see {self.log_path}:\n"
                                   + self.log_path.read_text()[-3000:])
            try:
                if httpx.get(self.url + READY_PATHS[self.name], timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"{self.name} was not ready within {timeout:.0f} s; see {self.log_path}")

    def stop(self, kill: bool = False) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@dataclass
class Launcher:
    """Services sharing one broker URL, each with its own database URL and port."""

    rabbit_url: str
    database_urls: dict[str, str]
    log_dir: Path
    ports: dict[str, int] = field(default_factory=dict)
    extra_env: dict[str, str] = field(default_factory=dict)
    services: dict[str, RunningService] = field(default_factory=dict)

    def env_for(self, name: str, port: int) -> dict[str, str]:
        prefix = ENV_PREFIX[name]
        inherited = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}  # NiceGUI checks these
        env = {**inherited, "PYTHONUNBUFFERED": "1", f"{prefix}_RABBIT_URL": self.rabbit_url,
               f"{prefix}_HTTP_PORT": str(port), f"{prefix}_ENV": os.environ.get(f"{prefix}_ENV", "test")}
        if name in self.database_urls:
            env[f"{prefix}_DATABASE_URL"] = self.database_urls[name]
        if name == "web" and "gateway" in self.services:
            env["WEB_GATEWAY_URL"] = self.services["gateway"].url
        env.update(self.extra_env)
        return env

    def start(self, name: str, timeout: float = 60, copy: int = 1) -> RunningService:
        """Start a service; copy 2, 3 … are extra instances of it (competing consumers)."""
        self.log_dir.mkdir(parents=True, exist_ok=True)
        key = name if copy == 1 else f"{name}-{copy}"
        port = (self.ports.get(name) if copy == 1 else None) or free_port()
        service = RunningService(name, port, self.env_for(name, port), self.log_dir / f"{key}.log")
        self.services[key] = service
        service.start(timeout)
        return service

    def restart(self, name: str, kill: bool = False) -> None:
        service = self.services[name]
        service.stop(kill=kill)
        service.start()

    def stop_all(self) -> None:
        for service in reversed(list(self.services.values())):
            service.stop()
