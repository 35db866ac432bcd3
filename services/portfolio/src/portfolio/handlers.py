"""Where writes and reads enter: a batch of writes in one transaction (a savepoint per message when one fails), reads at once."""

from collections.abc import Sequence
from dataclasses import dataclass, field

from contracts.envelope import Message
from contracts.portfolios import OwnedCommand, PortfolioUpdated
from contracts.prices import PriceResolved, PriceTicked, PriceUnavailable, ResolvedPrice, UnavailablePrice

from contracts import ErrorCode, Reply
from portfolio import repository as repo
from portfolio.commands import WRITES
from portfolio.domain import Conflict, DomainError
from portfolio.price_events import PriceAnswer, apply_price_answer, apply_price_answers, apply_price_tick
from portfolio.queries import READS
from portfolio.service import PortfolioService
from portfolio.unit_of_work import UnitOfWork


@dataclass
class Handled:
    """What one write produced: a command's reply, the messages it queued, how many portfolios a tick moved."""

    reply: Reply | None = None
    outgoing: list[Message] = field(default_factory=list)
    moved: int = 0


class CarefulRetry(Exception):
    """A message of a batch run without savepoints failed: the batch is rolled back and run again with them."""


async def run_batch(service: PortfolioService, messages: Sequence[Message]) -> list[Handled | Exception]:
    """Handle writes (commands, price answers, ticks) in one transaction.

    Returns, per message, what it produced or the exception it raised; a failed message's inbox claim is given
    back so that its redelivery runs it again. Raises only when the batch as a whole cannot commit. A batch first
    runs without savepoints (two round trips less per message), a batch of one too (refusals are rare); if any
    message fails, it is rolled back and run again with a savepoint around each message, so that the failure undoes
    only its own work."""
    try:
        try:
            return await run_in_transaction(service, messages, careful=False)
        except CarefulRetry:
            return await run_in_transaction(service, messages, careful=True)
    except Conflict as conflict:
        if len(messages) == 1 and isinstance(messages[0], OwnedCommand):
            return [Handled(Reply.failure(messages[0], ErrorCode.CONFLICT, conflict.message))]
        raise


async def run_in_transaction(service: PortfolioService, messages: Sequence[Message], *, careful: bool
                             ) -> list[Handled | Exception]:
    results: list[Handled | Exception] = []
    async with service.pool.acquire() as connection, connection.transaction():
        uow = UnitOfWork(connection)
        # Claim every id first: a concurrent copy waits on these rows, then finds them taken.
        fresh = await repo.claim(connection, [message.message_id for message in messages])
        await uow.lock_portfolios([message.portfolio_id for message in messages  # type: ignore[attr-defined]
                                   if message.message_id in fresh and getattr(message, "portfolio_id", None)])
        groups = {} if careful else answers_by_portfolio(messages, fresh)
        absorbed: set[str] = set()
        for message in messages:
            if message.message_id in absorbed:
                absorbed.discard(message.message_id)
                results.append(Handled())  # applied with the first answer of its portfolio in this batch
                continue
            if message.message_id not in fresh:
                results.append(await handled_before(uow, message))
                continue
            fresh.discard(message.message_id)
            if careful:
                results.append(await handle_in_savepoint(service, uow, message))
                continue
            try:
                if message.message_id in groups:
                    group = groups[message.message_id]
                    absorbed.update(answer.message_id for answer in group[1:])
                    uow.begin(group[0])
                    handled = Handled(outgoing=await apply_price_answers(service, uow, as_one_answer(group)))
                else:
                    handled = await handle_write(service, uow, message)
            except Exception as error:
                raise CarefulRetry from error
            remember_reply(uow, message, handled)
            results.append(handled)
        await uow.flush()
    service.cash_flows.committed(uow.flows_written())
    service.committed_outbox(uow.enqueued)
    await service.notify(uow.notifications)
    return results


def answers_by_portfolio(messages: Sequence[Message], fresh: set[str]) -> dict[str, list[PriceAnswer]]:
    """Single price answers of one portfolio in a batch, keyed by the first one's id: they are applied together,
    in one fold of the ledger, however many there are and in whatever time order."""
    by_portfolio: dict[str, dict[str, PriceAnswer]] = {}
    for message in messages:
        if (isinstance(message, PriceResolved | PriceUnavailable) and message.schema_version == 1
                and message.portfolio_id and message.message_id in fresh):
            by_portfolio.setdefault(message.portfolio_id, {})[message.message_id] = message
    return {next(iter(group)): list(group.values()) for group in by_portfolio.values() if len(group) > 1}


def as_one_answer(answers: list[PriceAnswer]) -> PriceResolved:
    """Single answers of one portfolio as one batch answer, in the first one's envelope."""
    first = answers[0]
    resolved = [ResolvedPrice(request_id=a.causation_id, transaction_id=a.transaction_id, at=a.at, hour=a.hour,
                              price_usd=a.price_usd, source=a.source)
                for a in answers if isinstance(a, PriceResolved)]
    unavailable = [UnavailablePrice(request_id=a.causation_id, transaction_id=a.transaction_id, at=a.at,
                                    reason=a.reason, detail=a.detail)
                   for a in answers if isinstance(a, PriceUnavailable)]
    return PriceResolved(schema_version=2, message_id=first.message_id, correlation_id=first.correlation_id,
                         causation_id=first.causation_id, portfolio_id=first.portfolio_id, resolved=resolved,
                         unavailable=unavailable)


def remember_reply(uow: UnitOfWork, message: Message, handled: Handled) -> None:
    if handled.reply is not None:
        uow.replies[message.message_id] = handled.reply.to_json()


def refusal(command: OwnedCommand, error: DomainError) -> Reply:
    """A command the domain refused, as its typed error reply."""
    return Reply.failure(command, ErrorCode(error.code), error.message, error.details or None)


async def handle_in_savepoint(service: PortfolioService, uow: UnitOfWork, message: Message) -> Handled | Exception:
    """A refused command is answered with its error; any other failure gives its inbox claim back."""
    try:
        async with uow.savepoint():
            handled = await handle_write(service, uow, message)
    except Exception as error:
        if not (isinstance(error, DomainError) and isinstance(message, OwnedCommand)):
            uow.release(message.message_id)
            return error
        handled = Handled(refusal(message, error))
    remember_reply(uow, message, handled)
    return handled


async def handled_before(uow: UnitOfWork, message: Message) -> Handled:
    """A duplicate: a command gets the reply stored the first time; an event changes nothing."""
    if not isinstance(message, OwnedCommand):
        return Handled()
    stored = uow.replies.get(message.message_id) or (await repo.inbox_reply(uow.connection, message.message_id))[1]
    return Handled(Reply.from_json(stored) if stored else Reply.failure(
        message, ErrorCode.CONFLICT, "This request was already handled; its result is no longer available."))


async def handle_write(service: PortfolioService, uow: UnitOfWork, message: Message) -> Handled:
    uow.begin(message)
    if isinstance(message, PriceTicked):
        uow.before_tick()
        return Handled(moved=await apply_price_tick(service, uow, message))
    uow.before_message()
    if isinstance(message, PriceResolved | PriceUnavailable):
        return Handled(outgoing=await apply_price_answer(service, uow, message))
    outcome = await WRITES[type(message)](service, uow, message)  # type: ignore[index]
    uow.publish(outcome.outgoing)
    version = max((m.version for m in outcome.outgoing if isinstance(m, PortfolioUpdated)), default=None)
    return Handled(Reply.success(message, outcome.result, version), outcome.outgoing)  # type: ignore[arg-type]


async def handle_alone(service: PortfolioService, message: Message) -> Handled:
    """One write in its own transaction (the service batches them; tests and tools call this)."""
    result = (await run_batch(service, [message]))[0]
    if isinstance(result, Exception):
        raise result
    return result


async def handle_command(service: PortfolioService, command: OwnedCommand) -> tuple[Reply, list[Message]]:
    """A read runs at once on the pool; a write commits its events, projection, outbox rows and reply together."""
    if type(command) in READS:
        try:
            return Reply.success(command, await READS[type(command)](service, command)), []
        except DomainError as error:
            return refusal(command, error), []
    handled = await handle_alone(service, command)
    return handled.reply, handled.outgoing  # type: ignore[return-value]


async def on_price_answer(service: PortfolioService, answer: PriceResolved | PriceUnavailable) -> list[Message]:
    return (await handle_alone(service, answer)).outgoing
