"""Commands of a write sent with an Idempotency-Key carry the same message ids on every attempt."""

from typing import Any

from contracts.portfolios import CreatePortfolio
from gateway.bus import Backend, StableCommandIds, stable_command_ids

from contracts import Reply


class RecordingClient:
    """Stands in for the RPC client: records what would be published and answers at once."""

    connected = True

    def __init__(self) -> None:
        self.sent: list[Any] = []

    async def call(self, request: Any) -> Reply:
        self.sent.append(request)
        return Reply.success(request, {"ok": True})


async def attempt(backend: Backend, seed: str | None) -> None:
    token = stable_command_ids.set(StableCommandIds(seed) if seed else None)
    try:
        for name in ("first", "second"):
            await backend.ask(CreatePortfolio(owner_id="u", name=name))
    finally:
        stable_command_ids.reset(token)


async def test_each_attempt_with_one_key_sends_the_same_message_ids_in_order() -> None:
    client = RecordingClient()
    backend = Backend(client)  # type: ignore[arg-type]
    await attempt(backend, "seed-of-the-key")
    await attempt(backend, "seed-of-the-key")
    first, retry = [m.message_id for m in client.sent[:2]], [m.message_id for m in client.sent[2:]]
    assert first == retry and first[0] != first[1]
    await attempt(backend, "another-key")
    assert not {m.message_id for m in client.sent[4:]} & set(first)


async def test_without_a_key_every_command_is_new() -> None:
    client = RecordingClient()
    backend = Backend(client)  # type: ignore[arg-type]
    await attempt(backend, None)
    await attempt(backend, None)
    assert len({m.message_id for m in client.sent}) == 4
