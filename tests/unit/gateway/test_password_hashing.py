"""argon2 runs in worker threads, a bounded number at once, so that logins never stall the event loop."""

import asyncio
import threading
import time

import anyio
import pytest
from gateway import security


async def test_verifying_passwords_leaves_the_event_loop_free_and_is_bounded(monkeypatch) -> None:
    loop_thread = threading.get_ident()
    running, most_at_once, threads = 0, 0, set()
    lock = threading.Lock()

    def slow_verify(password_hash: str, password: str) -> tuple[bool, None]:  # argon2's ~20 ms of CPU, longer
        nonlocal running, most_at_once
        with lock:
            running += 1
            most_at_once = max(most_at_once, running)
            threads.add(threading.get_ident())
        time.sleep(0.05)
        with lock:
            running -= 1
        return True, None

    monkeypatch.setattr(security, "verify_password", slow_verify)
    limiter = anyio.CapacityLimiter(2)
    gaps: list[float] = []

    async def heartbeat() -> None:
        last = time.perf_counter()
        while True:
            await asyncio.sleep(0.005)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    beating = asyncio.create_task(heartbeat())
    results = await asyncio.gather(*(security.verify_password_off_loop(limiter, "hash", "pw") for _ in range(6)))
    beating.cancel()
    assert results == [(True, None)] * 6
    assert loop_thread not in threads
    assert most_at_once == 2
    assert max(gaps) < 0.045, "a verification blocked the event loop"


@pytest.mark.parametrize("password", ["correct horse battery staple"])
async def test_a_hash_made_off_the_loop_verifies(password: str) -> None:
    limiter = anyio.CapacityLimiter(1)
    hashed = await security.hash_password_off_loop(limiter, password)
    assert await security.verify_password_off_loop(limiter, hashed, password) == (True, None)
    assert (await security.verify_password_off_loop(limiter, hashed, "wrong"))[0] is False
