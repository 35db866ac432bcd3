"""Fault and load suite: each test prints its figures and proves 0 lost and 0 double-applied."""

import asyncio
import os
import signal
import subprocess
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import aio_pika
import httpx
from contracts.portfolios import RecordTransaction

from contracts import names
from tests.faults.conftest import new_portfolio
from tests.support.bus import dead_letters

START = datetime(2024, 1, 2, tzinfo=UTC)


def trade(owner: str, portfolio_id: str, n: int) -> RecordTransaction:
    """A buy at a real 2024 hour, priced by the price service; its note names it."""
    return RecordTransaction(owner_id=owner, portfolio_id=portfolio_id, side="buy", amount_btc=Decimal("0.001"),
                             at=START + timedelta(hours=n % 5000, minutes=7), note=f"n-{n}")


async def publish_all(rabbit_url: str, messages: list[RecordTransaction], copies: int = 1,
                      on_half: object = None) -> None:
    """Publish commands (no reply wanted) with confirms, many in flight."""
    connection = await aio_pika.connect(rabbit_url)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        exchange = await channel.get_exchange(names.COMMANDS_EXCHANGE)
        half = len(messages) // 2
        for start in range(0, len(messages), 100):
            batch = messages[start:start + 100]
            await asyncio.gather(*(
                exchange.publish(aio_pika.Message(m.to_json(), message_id=m.message_id,
                                                  delivery_mode=aio_pika.DeliveryMode.PERSISTENT),
                                 routing_key=m.routing_key)
                for m in batch for _ in range(copies)))
            if on_half is not None and start <= half < start + 100:
                await on_half()  # type: ignore[operator]


async def settle(pool, portfolio_id: str, expected: int, timeout: float = 180) -> dict[str, int]:
    """Wait until every expected transaction is recorded and none is pending; return the counts."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        row = await pool.fetchrow(
            "SELECT count(*) AS total, count(DISTINCT note) AS distinct_notes, "
            "count(*) FILTER (WHERE status = 'pending') AS pending, "
            "count(*) FILTER (WHERE status = 'priced') AS priced FROM transactions WHERE portfolio_id = $1",
            portfolio_id)
        counts = dict(row)
        if (counts["total"] >= expected and counts["pending"] == 0) or loop.time() > deadline:
            return counts
        await asyncio.sleep(0.5)


def report(name: str, sent: int, counts: dict[str, int], seconds: float, **extra: object) -> None:
    lost = sent - counts["distinct_notes"]
    doubled = counts["total"] - counts["distinct_notes"]
    print(f"\n[{name}] sent={sent} recorded={counts['total']} priced={counts['priced']} lost={lost} "
          f"double_applied={doubled} seconds={seconds:.1f} " + " ".join(f"{k}={v}" for k, v in extra.items()))
    assert lost == 0 and doubled == 0 and counts["priced"] == sent


async def test_kill_9_of_the_portfolio_service_mid_load_loses_nothing(system, commands, portfolio_db) -> None:
    owner, sent = "fault-kill", 2000
    portfolio_id = await new_portfolio(commands, owner)
    messages = [trade(owner, portfolio_id, n) for n in range(sent)]
    service = system.launcher.services["portfolio"]
    started = asyncio.get_running_loop().time()

    async def kill_and_restart() -> None:
        os.killpg(service.process.pid, signal.SIGKILL)
        service.process.wait()
        await asyncio.to_thread(service.start)

    await publish_all(system.rabbit_url, messages, on_half=kill_and_restart)
    counts = await settle(portfolio_db, portfolio_id, sent)
    report("kill -9 portfolio", sent, counts, asyncio.get_running_loop().time() - started)


async def test_every_message_delivered_twice_is_applied_once(system, commands, portfolio_db) -> None:
    owner, sent = "fault-twice", 500
    portfolio_id = await new_portfolio(commands, owner)
    started = asyncio.get_running_loop().time()
    await publish_all(system.rabbit_url, [trade(owner, portfolio_id, n) for n in range(sent)], copies=2)
    counts = await settle(portfolio_db, portfolio_id, sent)
    await asyncio.sleep(2)  # let any late duplicate land, then count again
    counts = await settle(portfolio_db, portfolio_id, sent)
    report("every message twice", sent, counts, asyncio.get_running_loop().time() - started)


async def test_a_thousand_malformed_messages_reach_the_dlq_and_service_keeps_serving(system, commands) -> None:
    connection = await aio_pika.connect(system.rabbit_url)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        exchange = await channel.get_exchange(names.COMMANDS_EXCHANGE)
        bodies = [b"not json", b"{}", b'{"owner_id": 5}', b"\xff\xfe", b'{"schema_version": 99}']
        await asyncio.gather(*(exchange.publish(aio_pika.Message(bodies[i % len(bodies)] + str(i).encode() * 0),
                                                routing_key=names.TRANSACTION_RECORD) for i in range(1000)))
    parked = await dead_letters(system.rabbit_url, names.PORTFOLIO_COMMANDS_QUEUE, 1000, timeout=120)
    reasons = [m.headers.get(names.DEAD_LETTER_REASON_HEADER) for m in parked]
    print(f"\n[malformed] sent=1000 dead_lettered={len(parked)} with_reason={sum(1 for r in reasons if r)}")
    assert len(parked) == 1000 and all(reasons)
    portfolio_id = await new_portfolio(commands, "fault-after-poison")
    assert portfolio_id


async def gateway_count(system, owner: str, portfolio_id: str) -> int:
    """The portfolio's transaction count as the gateway answers it (from its read model when warm)."""
    from gateway import security
    from gateway.settings import Settings

    token, _ = security.issue_access_token(Settings(env="test"), owner, "fault-session")
    async with httpx.AsyncClient(base_url=system.gateway_url, timeout=15,
                                 headers={"Authorization": f"Bearer {token}"}) as api:
        response = await api.get(f"/v1/portfolios/{portfolio_id}")
    return int(response.json()["metrics"]["transaction_count"]) if response.status_code == 200 else -1


async def test_rabbitmq_restart_under_load_consumers_come_back(system, commands, portfolio_db) -> None:
    owner, sent = "fault-broker", 600
    portfolio_id = await new_portfolio(commands, owner)
    messages = [trade(owner, portfolio_id, n) for n in range(sent)]
    assert await gateway_count(system, owner, portfolio_id) == 0  # the gateway's read model holds it now
    await publish_all(system.rabbit_url, messages[: sent // 2])
    started = asyncio.get_running_loop().time()
    try:
        subprocess.run(["rabbitmqctl", "-q", "stop_app"], check=True, timeout=60)
        await asyncio.sleep(2)
    finally:
        subprocess.run(["rabbitmqctl", "-q", "start_app"], check=True, timeout=120)
    await asyncio.sleep(3)
    await publish_all(system.rabbit_url, messages[sent // 2:])
    counts = await settle(portfolio_db, portfolio_id, sent, timeout=240)
    report("rabbitmq restart", sent, counts, asyncio.get_running_loop().time() - started)
    # The gateway lost its feed with the broker: it must not go on serving what it held before the restart.
    deadline = asyncio.get_running_loop().time() + 20
    while (seen := await gateway_count(system, owner, portfolio_id)) != sent:
        assert asyncio.get_running_loop().time() < deadline, f"the gateway still answers {seen} of {sent} trades"
        await asyncio.sleep(0.2)


async def test_postgres_restart_gateway_answers_503_and_nothing_is_lost(system, commands, portfolio_db) -> None:
    owner, sent = "fault-postgres", 400
    portfolio_id = await new_portfolio(commands, owner)
    messages = [trade(owner, portfolio_id, n) for n in range(sent)]
    await publish_all(system.rabbit_url, messages[: sent // 2])
    version = subprocess.run("ls /etc/postgresql", shell=True, capture_output=True, text=True).stdout.split()[-1]
    statuses: list[tuple[int, str | None]] = []
    started = asyncio.get_running_loop().time()
    try:
        subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "stop", "-m", "fast"],
                       check=True, timeout=60)
        async with httpx.AsyncClient(base_url=system.gateway_url, timeout=15) as api:
            for _ in range(3):
                response = await api.post("/v1/auth/login", json={"email": "x@example.com", "password": "y" * 12})
                statuses.append((response.status_code, response.headers.get("Retry-After")))
        await publish_all(system.rabbit_url, messages[sent // 2:])
    finally:
        subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "start"], check=True,
                       timeout=60)
    counts = await settle(portfolio_db, portfolio_id, sent, timeout=240)
    report("postgres restart", sent, counts, asyncio.get_running_loop().time() - started,
           gateway_during_outage=statuses)
    assert all(status == 503 and retry for status, retry in statuses)
