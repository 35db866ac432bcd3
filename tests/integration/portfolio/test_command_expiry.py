"""A command that reaches the portfolio service after its caller stopped waiting is set aside, not applied."""

import time
from uuid import uuid4

from contracts.portfolios import CreatePortfolio, ListPortfolios
from contracts.rpc import DEADLINE_HEADER

from contracts import names
from tests.support.bus import dead_letters, publish_raw


async def test_a_command_past_its_deadline_is_dead_lettered_with_a_reason_and_never_applied(commands,
                                                                                            rabbit_url) -> None:
    owner = f"late-{uuid4().hex[:8]}"
    late = CreatePortfolio(owner_id=owner, name="too late")
    await publish_raw(rabbit_url, names.COMMANDS_EXCHANGE, late.routing_key, late.to_json(),
                      message_id=late.message_id, headers={DEADLINE_HEADER: int(time.time() * 1000) - 1000})
    parked = await dead_letters(rabbit_url, names.PORTFOLIO_COMMANDS_QUEUE, 1)
    assert len(parked) == 1 and parked[0].message_id == late.message_id
    assert "expired" in parked[0].headers[names.DEAD_LETTER_REASON_HEADER]
    assert (await commands.ok(ListPortfolios(owner_id=owner)))["total"] == 0


async def test_a_command_within_its_deadline_is_applied(commands) -> None:
    owner = f"on-time-{uuid4().hex[:8]}"
    await commands.ok(CreatePortfolio(owner_id=owner, name="on time"))  # the client sets a deadline it keeps
    assert (await commands.ok(ListPortfolios(owner_id=owner)))["total"] == 1
