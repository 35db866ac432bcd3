"""Start and stop the real services as subprocesses (used by `make run` and by the e2e, web and fault tests)."""

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
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
STOP_GRACE_SECONDS = 10.0
"""How long a service may take to stop after SIGTERM before its whole process group is killed."""


class PortInUse(RuntimeError):
    """The port a service is to listen on is held by another process (often one an earlier run left behind)."""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """Whether a server could listen on the port now (SO_REUSEADDR, as uvicorn binds, so TIME_WAIT is no obstacle)."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
        return True


@contextlib.contextmanager
def signals_deferred() -> Iterator[list[int]]:
    """SIGINT and SIGTERM are noted, not raised, inside the block, so a repeated Ctrl-C or `kill` (make sends one
    more when it is itself signalled) cannot interrupt a stop half-way and leave services holding their ports."""
    received: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield received  # only the main thread receives signals
        return
    previous = {number: signal.signal(number, lambda number, _frame: received.append(number))
                for number in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield received
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def _signal_group(process: subprocess.Popen[bytes], number: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, number)  # the service and anything it spawned (its own session, see start)


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
        if not port_is_free(self.port):
            raise PortInUse(f"Port {self.port}, where {self.name} is to listen, is already in use by another "
                            f"process, perhaps one an earlier run left behind. Stop it (`fuser -k {self.port}/tcp` "
                            f"shows and ends it) or choose another port with {ENV_PREFIX[self.name]}_HTTP_PORT.")
        log = self.log_path.open("ab")
        command = [str(BIN / COMMANDS[self.name][0]), *COMMANDS[self.name][1:]]
        # Its own session and process group: a Ctrl-C in the terminal reaches only the launcher, which stops the
        # services in order, and a stop can signal the whole group.
        self.process = subprocess.Popen(command, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                        start_new_session=True)
        log.close()  # the child holds its own copy
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

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def signal(self, kill: bool = False) -> None:
        """Ask it to stop (SIGTERM), or kill it (SIGKILL); nothing when it has already exited."""
        if self.running:
            assert self.process is not None
            _signal_group(self.process, signal.SIGKILL if kill else signal.SIGTERM)

    def wait_stopped(self, deadline: float) -> None:
        """Wait until the deadline for it to exit, then kill its process group; returns once it is gone."""
        if self.process is None:
            return
        try:
            self.process.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            _signal_group(self.process, signal.SIGKILL)
            self.process.wait()
        _signal_group(self.process, signal.SIGKILL)  # anything it spawned that outlived it

    def stop(self, kill: bool = False, grace: float = STOP_GRACE_SECONDS) -> None:
        """Stop it; safe to call again, and not interrupted by SIGINT or SIGTERM."""
        with signals_deferred():
            self.signal(kill)
            self.wait_stopped(time.monotonic() + grace)


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

    def stop_all(self, grace: float = STOP_GRACE_SECONDS) -> None:
        """Stop every service: all asked at once, any still running after the grace period killed.

        Idempotent, and SIGINT/SIGTERM arriving meanwhile are deferred, so the stop always completes."""
        with signals_deferred():
            services = list(reversed(self.services.values()))
            for service in services:
                service.signal()
            deadline = time.monotonic() + grace
            for service in services:
                service.wait_stopped(deadline)
