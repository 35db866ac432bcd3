"""`make run`'s launcher as a subprocess: a repeated SIGTERM still stops every service, a taken port is named."""

import http.server
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import pytest

from scripts.launcher import free_port, port_is_free
from tests.support.infrastructure import ROOT

SERVICES = ("price", "portfolio", "gateway", "web")
PREFIX = {"price": "PRICE", "portfolio": "PORTFOLIO", "gateway": "GATEWAY", "web": "WEB"}


class Launch:
    """`python -m scripts.run_all` with its output collected line by line."""

    def __init__(self, env: dict[str, str]) -> None:
        self.process = subprocess.Popen([sys.executable, "-m", "scripts.run_all"], cwd=ROOT, env=env,
                                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.lines: list[str] = []
        threading.Thread(target=self._collect, daemon=True).start()

    def _collect(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line)

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def wait_for(self, text: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.output:
            assert self.process.poll() is None, f"the launcher exited early:\n{self.output}"
            assert time.monotonic() < deadline, f"no {text!r} within {timeout} s:\n{self.output}"
            time.sleep(0.2)

    def end(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


@pytest.fixture
async def run_env(make_database, make_vhost, tmp_path) -> dict[str, str]:
    """The environment of a `make run` on its own databases, vhost and free ports."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    for name in ("price", "portfolio", "gateway"):
        env[f"{PREFIX[name]}_DATABASE_URL"] = await make_database(name, migrated=False)
    for name in SERVICES:
        env[f"{PREFIX[name]}_HTTP_PORT"] = str(free_port())
    env.update(BITFOLIO_RABBIT_URL=make_vhost("run"), BITFOLIO_RUN_DIR=str(tmp_path), PRICE_SYNC_ENABLED="false",
               PRICE_PROVIDER_ATTEMPTS="1", PRICE_PROVIDER_BASE_URL="http://127.0.0.1:9")
    return env


@pytest.fixture
def launch(run_env: dict[str, str]) -> Iterator[Launch]:
    started = Launch(run_env)
    yield started
    started.end()


def ports(env: dict[str, str]) -> dict[str, int]:
    return {name: int(env[f"{PREFIX[name]}_HTTP_PORT"]) for name in SERVICES}


def test_sigterm_twice_while_stopping_still_frees_every_port(launch: Launch, run_env: dict[str, str]) -> None:
    launch.wait_for("Bitfolio is running", timeout=240)
    assert not any(port_is_free(port) for port in ports(run_env).values())
    launch.process.send_signal(signal.SIGTERM)
    time.sleep(0.3)  # now inside the stop: make sends its own SIGTERM about then
    for repeated in (signal.SIGTERM, signal.SIGINT):  # and an impatient user presses Ctrl-C
        launch.process.send_signal(repeated)
        time.sleep(0.1)
    assert launch.process.wait(timeout=60) == 0, launch.output
    held = [f"{name} ({port})" for name, port in ports(run_env).items() if not port_is_free(port)]
    assert not held, f"still listening after the stop: {held}\n{launch.output}"
    assert "every service is stopped" in launch.output


class AlwaysReady(http.server.BaseHTTPRequestHandler):
    """An old process that still answers health checks on the port."""

    def do_GET(self) -> None:
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b'{"status": "ok"}')

    def log_message(self, *_: object) -> None:
        pass


def test_a_port_in_use_is_named_and_never_reported_up(run_env: dict[str, str]) -> None:
    taken = int(run_env["GATEWAY_HTTP_PORT"])
    old_process = http.server.ThreadingHTTPServer(("127.0.0.1", taken), AlwaysReady)
    threading.Thread(target=old_process.serve_forever, daemon=True).start()
    launch = Launch(run_env)
    try:
        assert launch.process.wait(timeout=240) == 1, launch.output
    finally:
        launch.end()
        old_process.shutdown()
        old_process.server_close()
    assert f"Port {taken}" in launch.output and "already in use" in launch.output, launch.output
    assert "gateway is up" not in launch.output
    started = {name: port for name, port in ports(run_env).items() if name in ("price", "portfolio")}
    assert all(port_is_free(port) for port in started.values()), "services started before the refusal were left"
