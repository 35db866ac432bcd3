"""`make run`: check Postgres and RabbitMQ, migrate, seed prices and the demo account, start every service."""

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from scripts import services_up
from scripts.launcher import BIN, ENV_PREFIX, ROOT, Launcher

LOGS = Path(os.environ.get("BITFOLIO_RUN_DIR", ROOT / ".run")) / "logs"
DEFAULT_PORTS = {"gateway": 8000, "price": 8001, "portfolio": 8002, "web": 8080}
PORTS = {name: int(os.environ.get(f"{ENV_PREFIX[name]}_HTTP_PORT", port)) for name, port in DEFAULT_PORTS.items()}
RABBIT_URL = os.environ.get("BITFOLIO_RABBIT_URL", "amqp://guest:guest@127.0.0.1:5672/")


def step(title: str, command: list[str]) -> None:
    print(f"· {title}", flush=True)
    # The same broker as the services the launcher starts (BITFOLIO_RABBIT_URL), e.g. for seed-demo's commands.
    env = {**os.environ, **{f"{prefix}_RABBIT_URL": RABBIT_URL for prefix in ENV_PREFIX.values()}}
    result = subprocess.run([str(BIN / command[0]), *command[1:]], cwd=ROOT, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        print(result.stdout[-2000:], result.stderr[-4000:], sep="\n", file=sys.stderr)
        raise SystemExit(f"`{' '.join(command)}` failed; see the output above.")


def stop_on_sigterm(*_: object) -> None:
    raise KeyboardInterrupt  # `kill` and Ctrl-C both stop every service cleanly


def main() -> int:
    signal.signal(signal.SIGTERM, stop_on_sigterm)
    for prefix in ("PRICE", "PORTFOLIO", "GATEWAY", "WEB"):  # every service defaults to prod; `make run` is dev
        os.environ.setdefault(f"{prefix}_ENV", "dev")
    if services_up.main() != 0:
        return 1
    for service in ("price", "portfolio", "gateway"):
        step(f"migrating the {service} database", [service, "migrate"])
    step("loading the bundled 2024 BTC-USD candles when the price database is empty", ["price", "seed"])
    development = {f"{prefix}_ENV": os.environ[f"{prefix}_ENV"] for prefix in ("PRICE", "PORTFOLIO", "GATEWAY", "WEB")}
    launcher = Launcher(RABBIT_URL, {}, LOGS, ports=PORTS, extra_env=development)
    try:
        for name in ("price", "portfolio", "gateway", "web"):
            launcher.start(name)
            print(f"· {name} is up on {launcher.services[name].url}", flush=True)
        step("seeding the demo account with real 2024 trades", ["gateway", "seed-demo"])
        url = {name: service.url for name, service in launcher.services.items()}
        print(
            "\nBitfolio is running:\n"
            f"  dashboard      {url['web']}   (\"Try the demo\" on the login page)\n"
            f"  public API     {url['gateway']}/docs\n"
            f"  price service  {url['price']}/docs\n"
            f"  logs           {LOGS}\n"
            "Press Ctrl-C to stop.",
            flush=True,
        )
        while all(s.process is not None and s.process.poll() is None for s in launcher.services.values()):
            time.sleep(1)
        stopped = [name for name, s in launcher.services.items() if s.process and s.process.poll() is not None]
        print(f"{', '.join(stopped)} stopped; see {LOGS}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    except RuntimeError as error:
        print(error, file=sys.stderr)
        return 1
    finally:
        # From here on the launcher only stops and exits: a repeated Ctrl-C or `kill` (make sends one more) is
        # ignored, so it can neither interrupt the stop nor kill the launcher before it reports.
        for number in (signal.SIGINT, signal.SIGTERM):
            signal.signal(number, signal.SIG_IGN)
        launcher.stop_all()
        with contextlib.suppress(OSError):  # the terminal or make may be gone by now
            print("· every service is stopped", flush=True)


if __name__ == "__main__":
    sys.exit(main())
