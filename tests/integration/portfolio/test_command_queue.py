"""The command queue's own consumer (command_queue.CommandQueue, aiormq without FastStream): it consumes again once
the broker cancelled it (the queue deleted and declared anew), and readiness says whether commands reach the copy."""

import asyncio

import aio_pika
from contracts.portfolios import CreatePortfolio, ListPortfolios
from contracts.topology import ensure_topology

from contracts import names


async def test_commands_are_answered_again_after_the_broker_cancelled_the_consumer(
    commands, portfolio_app, rabbit_url
) -> None:
    await commands.ok(CreatePortfolio(owner_id="owner-queue", name="Before"))
    assert (await portfolio_app.readiness())["commands"]
    connection = await aio_pika.connect(rabbit_url)
    async with connection:
        await (await connection.channel()).queue_delete(names.PORTFOLIO_COMMANDS_QUEUE)
    await ensure_topology(rabbit_url)  # as any service's start does

    answered = None
    for _ in range(20):  # the consumer comes back within a few seconds (RECONSUME_SECONDS)
        try:
            answered = await commands.client.call(CreatePortfolio(owner_id="owner-queue", name="After"), timeout=1)
            break
        except Exception:  # unroutable or unanswered until the queue is consumed again
            await asyncio.sleep(0.2)
    assert answered is not None and answered.ok
    listed = await commands.ok(ListPortfolios(owner_id="owner-queue"))
    assert sorted(item["name"] for item in listed["items"]) == ["After", "Before"]
    assert (await portfolio_app.readiness())["commands"]
    # the tries while nothing consumed expired (the broker or the deadline parked them): leave the DLQ as it was
    await asyncio.sleep(1.5)
    connection = await aio_pika.connect(rabbit_url)
    async with connection:
        parked = await (await connection.channel()).declare_queue(
            names.dead_letter_queue(names.PORTFOLIO_COMMANDS_QUEUE), passive=True)
        await parked.purge()
