"""`make run`: check Postgres and RabbitMQ, migrate, seed prices and the demo account, start every service."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from scripts import services_up

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
LOGS = ROOT / ".run" / "logs"

SERVICES = [  # (name, command, readiness URL)
    ("price", ["price", "serve"], "http://127.0.0.1:8001/readyz"),
    ("portfolio", ["portfolio", "serve"], "http://127.0.0.1:8002/readyz"),
    ("gateway", ["gateway", "serve"], "http://127.0.0.1:8000/readyz"),
    ("web", ["bitfolio-web", "serve"], "http://127.0.0.1:8080/"),
]


def step(title: str, command: list[str]) -> None:
    print(f"· {title}", flush=True)
    result = subprocess.run([str(BIN / command[0]), *command[1:]], cwd=ROOT, capture_output=True, text=True)
    if result.returncode != 0:
        print(result.stdout[-2000:], result.stderr[-4000:], sep="\n", file=sys.stderr)
        raise SystemExit(f"`{' '.join(command)}` failed; see the output above.")


def wait_ready(name: str, url: str, process: subprocess.Popen[bytes], timeout: float = 60) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{name} exited with code {process.returncode}; its log is {LOGS / (name + '.log')}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise SystemExit(f"{name} did not become ready at {url} within {timeout:.0f} s; see {LOGS / (name + '.log')}")


def main() -> int:
    if services_up.main() != 0:
        return 1
    for service in ("price", "portfolio", "gateway"):
        step(f"migrating the {service} database", [service, "migrate"])
    step("loading the bundled 2024 BTC-USD candles when the price database is empty", ["price", "seed"])

    LOGS.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    processes: list[subprocess.Popen[bytes]] = []
    try:
        for name, command, ready_url in SERVICES:
            log = (LOGS / f"{name}.log").open("ab")
            process = subprocess.Popen([str(BIN / command[0]), *command[1:]], cwd=ROOT, env=env, stdout=log,
                                       stderr=subprocess.STDOUT)
            processes.append(process)
            wait_ready(name, ready_url, process)
            print(f"· {name} is up", flush=True)
        step("seeding the demo account with real 2024 trades", ["gateway", "seed-demo"])
        print(
            "\nBitfolio is running:\n"
            "  dashboard      http://127.0.0.1:8080   (\"Try the demo\" on the login page)\n"
            "  public API     http://127.0.0.1:8000/docs\n"
            "  price service  http://127.0.0.1:8001/docs\n"
            f"  logs           {LOGS}\n"
            "Press Ctrl-C to stop.",
            flush=True,
        )
        while all(p.poll() is None for p in processes):
            time.sleep(1)
        stopped = [name for (name, *_), p in zip(SERVICES, processes, strict=False) if p.poll() is not None]
        print(f"{', '.join(stopped)} stopped; see {LOGS}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        for process in processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()


if __name__ == "__main__":
    sys.exit(main())
