"""The portfolio service's subscribers: an unexpected failure is retried a bounded number of times (the routing
key kept on each retry copy), then dead-lettered with its reason, and the caller gets a typed reply."""

from contracts.faststream_support import ATTEMPT_HEADER
from contracts.portfolios import CreatePortfolio, ListPortfolios
from portfolio import command_queue

from contracts import names
from tests.support.bus import dead_letters


async def test_command_that_keeps_failing_is_dead_lettered_after_the_set_attempts(
    commands, portfolio_app, rabbit_url, monkeypatch
) -> None:
    attempts: list[str] = []
    real_run_command = command_queue.run_command

    async def broken_for_one_owner(service, writer, command):  # type: ignore[no-untyped-def]
        if command.owner_id == "owner-with-a-bug":
            attempts.append(command.routing_key)
            raise KeyError("a bug the service did not expect")
        return await real_run_command(service, writer, command)

    monkeypatch.setattr(command_queue, "run_command", broken_for_one_owner)
    command = CreatePortfolio(owner_id="owner-with-a-bug", name="Never")
    reply = await commands.send(command)
    parked = await dead_letters(rabbit_url, names.PORTFOLIO_COMMANDS_QUEUE, 1)
    max_attempts = portfolio_app.settings.consumer_max_attempts
    assert not reply.ok and reply.error.code == "unavailable"
    assert attempts == [names.PORTFOLIO_CREATE] * max_attempts, "each retry copy is still portfolio.create"
    assert parked[0].message_id == command.message_id and parked[0].headers[ATTEMPT_HEADER] == max_attempts
    assert "a bug the service did not expect" in parked[0].headers[names.DEAD_LETTER_REASON_HEADER]
    assert (await commands.ok(ListPortfolios(owner_id="someone-else")))["items"] == []
