"""Benchmark companion of record_cpu: the messages RabbitMQ carries per recorded trade, by routing key.

The same closed loop as record_cpu (32 users, each POSTs a market-priced buy and waits until it is priced), with
a tap: an exclusive queue bound to `#` on the events and commands exchanges counts every message published to them
(a request/reply reply goes through the default exchange, so it is counted as one a command). Deliveries per trade
are each key's messages times the queues bound to it (from `rabbitmqctl list_bindings`; the tap and the bench's
own watcher left out). The tap costs RabbitMQ CPU, so this run measures counts, never CPU.

`python -m bench.record_messages [--trades-per-user 10]`
"""

import argparse
import asyncio
import re
import subprocess
from collections import Counter

import aio_pika

from bench.market_trades import hourly_opens, market_hours
from bench.record_cpu import SERVICES, STACK_ENV, USERS, Poster, sign_up
from bench.stack import running_stack
from bench.trades import watch_priced
from contracts import names

TAPPED = (names.EVENTS_EXCHANGE, names.COMMANDS_EXCHANGE)


async def tap(rabbit_url: str, seen: Counter[str]) -> aio_pika.abc.AbstractConnection:
    connection = await aio_pika.connect(rabbit_url)
    channel = await connection.channel()
    queue = await channel.declare_queue("bench.tap", exclusive=True, auto_delete=True)
    for exchange in TAPPED:
        await queue.bind(exchange, "#")

    async def count(message: aio_pika.abc.AbstractIncomingMessage) -> None:
        seen[f"{message.exchange} {message.routing_key}"] += 1

    await queue.consume(count, no_ack=True)
    return connection


def bound_queues(vhost: str) -> list[tuple[str, str, str]]:
    """(exchange, destination queue, binding key) of the vhost's bindings, but the tap's and the watcher's."""
    listed = subprocess.run(["rabbitmqctl", "-q", "list_bindings", "-p", vhost, "source_name", "destination_name",
                             "routing_key"], check=True, capture_output=True, text=True).stdout
    rows = [tuple(line.split("\t")) for line in listed.splitlines()[1:] if line.count("\t") == 2]
    return [(s, d, k) for s, d, k in rows  # type: ignore[misc]
            if s in TAPPED and d != "bench.tap" and not d.startswith("amq.gen-")]


def topic_matches(pattern: str, key: str) -> bool:
    def match(p: list[str], k: list[str]) -> bool:
        if not p:
            return not k
        if p[0] == "#":
            return any(match(p[1:], k[i:]) for i in range(len(k) + 1))
        return bool(k) and (p[0] in ("*", k[0])) and match(p[1:], k[1:])
    return match(pattern.split("."), key.split("."))


async def count_messages(rabbit_url: str, gateway_url: str, per_user: int) -> tuple[int, Counter[str]]:
    priced: dict[str, asyncio.Future[float]] = {}
    watcher = await watch_priced(rabbit_url, priced)
    hours = market_hours(hourly_opens())
    share = len(hours) // USERS
    posters: list[Poster] = [await sign_up(gateway_url, i, hours[i * share:(i + 1) * share])
                             for i in range(USERS)]
    try:
        for poster in posters:
            await poster.post_one(priced)
        await asyncio.sleep(1)
        seen: Counter[str] = Counter()
        tapping = await tap(rabbit_url, seen)

        async def user(poster: Poster) -> None:
            for _ in range(per_user):
                await poster.post_one(priced)

        await asyncio.gather(*(user(p) for p in posters))
        await asyncio.sleep(1)  # the last notifications reach the tap
        await tapping.close()
        return USERS * per_user, seen
    finally:
        await asyncio.gather(*(p.client.aclose() for p in posters))
        await watcher.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--trades-per-user", type=int, default=10)
    per_user = parser.parse_args().trades_per_user
    with running_stack(*SERVICES, env=STACK_ENV) as stack:
        trades, seen = asyncio.run(count_messages(stack.rabbit_url, stack.services["gateway"].url, per_user))
        bindings = bound_queues(stack.rabbit_url.rsplit("/", 1)[1])
    print(f"\n{trades} trades; messages per trade by exchange and routing key, and deliveries to our queues "
          f"(the bench's own watcher of portfolio.updated left out):")
    total_messages = total_deliveries = 0.0
    by_key: Counter[str] = Counter()
    queues_of: dict[str, set[str]] = {}
    for name, count in seen.items():
        exchange, key = name.split(" ", 1)
        owner_routed = key.startswith(names.PORTFOLIO_UPDATED + ".")
        shown = f"{exchange} {names.portfolio_updated_key('<owner>')}" if owner_routed else name
        by_key[shown] += count
        queues_of.setdefault(shown, set()).update(
            d for s, d, k in bindings if s == exchange and topic_matches(k, key))
    for name, count in sorted(by_key.items()):
        queues = queues_of[name]
        per_trade, deliveries = count / trades, count * len(queues) / trades
        total_messages += per_trade
        total_deliveries += deliveries
        print(f"  {name:<60} {per_trade:6.2f} messages, {deliveries:6.2f} deliveries ({', '.join(sorted(re.sub('[0-9a-f]{32}', '<id>', q) for q in queues))})")
    replies = sum(count for name, count in seen.items() if name.startswith(names.COMMANDS_EXCHANGE)) / trades
    print(f"  {'replies (default exchange, one a command)':<60} {replies:6.2f} messages, {replies:6.2f} deliveries")
    print(f"  {'total':<60} {total_messages + replies:6.2f} messages, {total_deliveries + replies:6.2f} deliveries")


if __name__ == "__main__":
    main()
