"""CPU seconds per process group (a service, Postgres backends of our databases, RabbitMQ), read from /proc."""

import os
import threading
from collections.abc import Callable, Iterable
from pathlib import Path

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float | None:
    """utime + stime of one process, or None once it has gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / TICKS  # fields 14 and 15 of stat, counted after "(comm)"


def command_line(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except (FileNotFoundError, ProcessLookupError):
        return ""


def all_pids() -> list[int]:
    return [int(name) for name in os.listdir("/proc") if name.isdigit()]


TITLES: dict[int, str] = {}
"""Each process's command line, read once: a scan every second must not itself load the 2 cores it measures."""


def title(pid: int) -> str:
    if pid in TITLES:
        return TITLES[pid]
    line = command_line(pid)
    if "postgres" not in line or line.startswith("postgres:"):  # a backend just forked has no title yet
        TITLES[pid] = line
    return line


def postgres_backends(databases: Iterable[str]) -> Callable[[], list[int]]:
    """The Postgres backends serving these databases: their process title names the database."""
    names = [f" {name} " for name in databases]
    return lambda: [pid for pid in all_pids()
                    if title(pid).startswith("postgres:") and any(name in title(pid) for name in names)]


def processes_named(executable: str) -> Callable[[], list[int]]:
    return lambda: [pid for pid in all_pids() if Path(title(pid).split(" ", 1)[0]).name == executable]


def fixed(*pids: int) -> Callable[[], list[int]]:
    return lambda: list(pids)


def rabbitmq_node() -> Callable[[], list[int]]:
    """Every RabbitMQ node's process on the machine, or only the node whose beam.smp pid BITFOLIO_BENCH_RABBIT_PID
    names: a private node (with BITFOLIO_BENCH_RABBIT_URL pointing at it) measures our load alone, while the
    shared node serves everyone else's tests."""
    pid = os.environ.get("BITFOLIO_BENCH_RABBIT_PID")
    return fixed(int(pid)) if pid else processes_named("beam.smp")


class CpuMeter:
    """Samples every group's processes while it runs; a process that starts mid-run counts from zero, and one that
    ends mid-run keeps what it used up to the last sample (Postgres backends come and go with the pools)."""

    def __init__(self, groups: dict[str, Callable[[], list[int]]], every: float = 1.0) -> None:
        self.groups, self.every = groups, every
        self.first: dict[str, dict[int, float]] = {name: {} for name in groups}
        self.last: dict[str, dict[int, float]] = {name: {} for name in groups}
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def sample(self, initial: bool = False) -> None:
        for name, find in self.groups.items():
            for pid in find():
                used = cpu_seconds(pid)
                if used is None:
                    continue
                self.first[name].setdefault(pid, used if initial else 0.0)
                self.last[name][pid] = used

    def run(self) -> None:
        while not self.stopping.wait(self.every):
            self.sample()

    def __enter__(self) -> "CpuMeter":
        self.sample(initial=True)
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stopping.set()
        self.thread.join()
        self.sample()

    def seconds(self) -> dict[str, float]:
        return {name: sum(self.last[name][pid] - self.first[name][pid] for pid in self.last[name])
                for name in self.groups}
