"""Deliveries acknowledged in batches: one ack (multiple) per half prefetch or per delay, never backwards."""

import asyncio
from dataclasses import dataclass, field
from typing import Any

from contracts.consuming import BatchedAcks


@dataclass
class Channel:
    acks: list[tuple[int, bool]] = field(default_factory=list)

    async def basic_ack(self, delivery_tag: int, multiple: bool = False) -> None:
        self.acks.append((delivery_tag, multiple))


@dataclass
class Delivery:
    """The part of aiormq's DeliveredMessage that BatchedAcks uses."""

    channel: Channel
    delivery_tag: int


def deliveries(channel: Channel, tags: range) -> list[Any]:
    return [Delivery(channel, tag) for tag in tags]


async def settle() -> None:
    for _ in range(3):
        await asyncio.sleep(0)


async def test_half_the_prefetch_handled_is_acknowledged_in_one_frame() -> None:
    channel, acks = Channel(), BatchedAcks(prefetch=10, delay=60)
    for message in deliveries(channel, range(1, 13)):
        acks.handled(message)
    await settle()
    assert channel.acks == [(5, True), (10, True)], "12 handled: two acks, 11 and 12 wait for the next batch"


async def test_a_lone_message_is_acknowledged_after_the_delay() -> None:
    channel, acks = Channel(), BatchedAcks(prefetch=100, delay=0.01)
    acks.handled(Delivery(channel, 1))
    await settle()
    assert channel.acks == []
    await asyncio.sleep(0.05)
    assert channel.acks == [(1, True)]


async def test_an_ack_never_goes_backwards_on_a_channel() -> None:
    channel, acks = Channel(), BatchedAcks(prefetch=4, delay=60)
    first, second, third = deliveries(channel, range(1, 4))
    acks.handled(third)  # handled out of order: the highest tag wins
    acks.handled(first)
    await settle()
    assert channel.acks == [(3, True)]
    acks.handled(second)  # already covered by the ack of 3
    acks.flush()
    await settle()
    assert channel.acks == [(3, True)]


async def test_after_a_reconnect_the_new_channel_counts_from_its_own_tags() -> None:
    old, new, acks = Channel(), Channel(), BatchedAcks(prefetch=2, delay=60)
    acks.handled(Delivery(old, 7))
    await settle()
    acks.handled(Delivery(new, 1))
    await settle()
    assert old.acks == [(7, True)] and new.acks == [(1, True)]
