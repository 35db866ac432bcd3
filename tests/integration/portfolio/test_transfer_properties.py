"""Random histories of three portfolios with transfers between them, prices that come late or never, edits and
deletes: the moved cost leaving always equals the cost arriving, transfers realize nothing, replay = live."""

from datetime import timedelta
from decimal import Decimal

from contracts.portfolios import (
    CreatePortfolio,
    DeleteTransaction,
    EditTransaction,
    EditTransfer,
    GetPortfolio,
    ListTransactions,
    RecordTransaction,
    RecordTransfer,
    SetCostBasisMethod,
)
from contracts.prices import PriceResolved, PriceUnavailable, UnavailableReason
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from portfolio import handlers
from portfolio.replay import differences, rebuild

from tests.integration.portfolio.test_held_sells_properties import START, holds_database, ok, service_on  # noqa: F401

OWNER = "holds"  # the market price and database of the held-sells properties
D = Decimal
METHODS = st.sampled_from(["average", "fifo", "lifo", "hifo"])
AMOUNTS = st.sampled_from(["0.1", "0.3", "0.5", "1"])
OPERATIONS = st.lists(st.one_of(
    st.tuples(st.just("buy"), st.integers(0, 2), AMOUNTS, st.integers(0, 30), st.booleans()),
    st.tuples(st.just("sell"), st.integers(0, 2), AMOUNTS, st.integers(0, 30)),
    *[st.tuples(st.just("transfer"), st.integers(0, 2), st.integers(1, 2), AMOUNTS, st.integers(0, 30),
                st.sampled_from(["0", "0.01"]))] * 3,
    st.tuples(st.just("answer"), st.integers(0, 50), st.booleans()),
    st.tuples(st.just("edit"), st.integers(0, 50), AMOUNTS, st.integers(0, 30)),
    st.tuples(st.just("delete"), st.integers(0, 50)),
    st.tuples(st.just("method"), st.integers(0, 2), METHODS),
), min_size=4, max_size=16)


async def check_transfers_balance(service, portfolio_ids: list[str]) -> None:
    sides, figures = {}, {}
    for portfolio_id in portfolio_ids:
        page = await ok(service, ListTransactions(owner_id=OWNER, portfolio_id=portfolio_id, limit=1000))
        figures[portfolio_id] = (await ok(service, GetPortfolio(owner_id=OWNER, portfolio_id=portfolio_id)))["metrics"]
        sold = D(0)
        for item in page["items"]:
            sides[item["transaction_id"]] = item
            if item["kind"] == "trade" and item["side"] == "sell" and item["status"] == "priced":
                sold += D(item["metrics"]["cost_basis_sold_usd"])
        metrics = figures[portfolio_id]
        # invested moves with a transfer's cost, so what a portfolio invested is what it holds plus what it sold
        assert abs(D(metrics["invested_usd"]) - D(metrics["cost_basis_usd"]) - sold) < D("1e-12")
    for item in sides.values():
        if item["kind"] == "trade":
            continue
        assert item["metrics"] is None or item["metrics"]["realized_pnl_usd"] is None
        if item["kind"] != "transfer_out":
            continue
        arrived = sides[item["transfer"]["counterpart_transaction_id"]]
        assert (item["status"] == "priced") == (arrived["status"] == "priced"), (item, arrived)
        if item["status"] == "priced":
            assert item["metrics"]["moved_cost_usd"] == arrived["metrics"]["moved_cost_usd"]
            assert D(arrived["amount_btc"]) == D(item["amount_btc"]) - D(arrived["fee_btc"])


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(methods=st.lists(METHODS, min_size=3, max_size=3), operations=OPERATIONS)
async def test_random_histories_with_transfers_balance_and_replay_to_live(holds_database, methods,  # noqa: F811
                                                                         operations) -> None:
    service = await service_on(holds_database)
    try:
        portfolios = [(await ok(service, CreatePortfolio(owner_id=OWNER, name=f"p{n}", cost_basis_method=method))
                       )["portfolio_id"] for n, method in enumerate(methods)]
        requests: list = []
        recorded: list[tuple[str, str]] = []
        transfers: list[tuple[str, str]] = []

        for n, portfolio_id in enumerate(portfolios):  # something to move from the start; later buys add more
            await ok(service, RecordTransaction(owner_id=OWNER, portfolio_id=portfolio_id, side="buy",
                                                amount_btc=D(1 + n), at=START, price_usd=D(30000 + 5000 * n)))

        async def send(command) -> dict | None:
            reply, outgoing = await handlers.handle_command(service, command)
            requests.extend(m for m in outgoing if m.routing_key == "price.requested")
            return reply.result if reply.ok else None

        async def answer(request, priced: bool) -> None:
            await handlers.on_price_answer(service, PriceResolved(
                transaction_id=request.transaction_id, portfolio_id=request.portfolio_id, at=request.at,
                hour=int(request.at.timestamp()) // 3600 * 3600, price_usd=D(45000), source="test",
                **request.caused()) if priced else PriceUnavailable(
                transaction_id=request.transaction_id, portfolio_id=request.portfolio_id, at=request.at,
                reason=UnavailableReason.BEFORE_DATA, detail="No price then.", **request.caused()))

        for operation in operations:
            kind = operation[0]
            if kind in ("buy", "sell"):
                typed = operation[4] if kind == "buy" else True
                day = operation[3]
                done = await send(RecordTransaction(
                    owner_id=OWNER, portfolio_id=portfolios[operation[1]], side=kind, amount_btc=D(operation[2]),
                    at=START + timedelta(days=day, hours=day % 5), price_usd=D(40000 + 900 * day) if typed else None))
                if done:
                    recorded.append((portfolios[operation[1]], done["transaction_id"]))
            elif kind == "transfer":
                _, source, step, amount, day, fee = operation
                done = await send(RecordTransfer(
                    owner_id=OWNER, portfolio_id=portfolios[source], to_portfolio_id=portfolios[(source + step) % 3],
                    amount_btc=D(amount), fee_btc=D(fee), at=START + timedelta(days=day, hours=7)))
                if done:
                    transfers.append((portfolios[source], done["transfer"]["transfer_id"]))
                    recorded.append((portfolios[source], done["transaction_id"]))
            elif kind == "answer" and requests:
                await answer(requests.pop(operation[1] % len(requests)), operation[2])
            elif kind == "edit" and recorded:
                _, which, amount, day = operation
                portfolio_id, transaction_id = recorded[which % len(recorded)]
                at = START + timedelta(days=day, hours=3)
                moved = next((t for t in transfers if t[0] == portfolio_id), None) if which % 2 else None
                await send(EditTransfer(owner_id=OWNER, portfolio_id=moved[0], transfer_id=moved[1],
                                        amount_btc=D(amount), at=at) if moved
                           else EditTransaction(owner_id=OWNER, portfolio_id=portfolio_id,
                                                transaction_id=transaction_id, amount_btc=D(amount), at=at))
            elif kind == "delete" and recorded:
                portfolio_id, transaction_id = recorded[operation[1] % len(recorded)]
                await send(DeleteTransaction(owner_id=OWNER, portfolio_id=portfolio_id, transaction_id=transaction_id))
                recorded.remove((portfolio_id, transaction_id))  # deleted, or refused: not picked again
            elif kind == "method":
                await send(SetCostBasisMethod(owner_id=OWNER, portfolio_id=portfolios[operation[1]],
                                              cost_basis_method=operation[2]))
            await check_transfers_balance(service, portfolios)
        while requests:  # every price comes in the end: the counted transfers balance too
            await answer(requests.pop(), True)
        await check_transfers_balance(service, portfolios)
        for portfolio_id in portfolios:
            assert await differences(service.pool, await rebuild(service, portfolio_id), portfolio_id) == []
    finally:
        await service.pool.close()


async def test_a_back_dated_buy_cascades_along_a_chain_of_transfers_and_back(holds_database) -> None:  # noqa: F811
    """A → B, then B → A: a buy back-dated in A changes what fifo sends to B, so what B sends back, in one write;
    every version and count stays in step (replay agrees), and the cost that went round comes back whole."""
    service = await service_on(holds_database)
    try:
        a, b = [(await ok(service, CreatePortfolio(owner_id=OWNER, name=name, cost_basis_method="fifo"))
                 )["portfolio_id"] for name in ("A", "B")]
        await ok(service, RecordTransaction(owner_id=OWNER, portfolio_id=a, side="buy", amount_btc=D("1"),
                                            at=START + timedelta(days=5), price_usd=D("50000")))
        for source, target, day in ((a, b, 10), (b, a, 20)):
            reply, outgoing = await handlers.handle_command(service, RecordTransfer(
                owner_id=OWNER, portfolio_id=source, to_portfolio_id=target, amount_btc=D("0.5"),
                at=START + timedelta(days=day)))
            assert reply.ok, reply.error
            [request] = [m for m in outgoing if m.routing_key == "price.requested"]
            await handlers.on_price_answer(service, PriceResolved(
                transaction_id=request.transaction_id, portfolio_id=source, at=request.at,
                hour=int(request.at.timestamp()) // 3600 * 3600, price_usd=D(45000), source="test",
                **request.caused()))
        back = next(t for t in (await ok(service, ListTransactions(owner_id=OWNER, portfolio_id=a)))["items"]
                if t["kind"] == "transfer_in")
        assert D(back["metrics"]["moved_cost_usd"]) == D("25000")

        await ok(service, RecordTransaction(owner_id=OWNER, portfolio_id=a, side="buy", amount_btc=D("1"),
                                            at=START, price_usd=D("20000")))
        items = (await ok(service, ListTransactions(owner_id=OWNER, portfolio_id=a)))["items"]
        back = next(t for t in items if t["kind"] == "transfer_in")
        assert D(back["metrics"]["moved_cost_usd"]) == D("10000")  # fifo now sends half of the earlier buy
        figures = (await ok(service, GetPortfolio(owner_id=OWNER, portfolio_id=a)))["metrics"]
        assert D(figures["cost_basis_usd"]) == D("70000") and D(figures["holdings_btc"]) == D("2")
        # an edit of A → B changes both streams, and on the way B → A, so A again, in the same write
        a_to_b = next(t for t in items if t["kind"] == "transfer_out")["transfer"]["transfer_id"]
        edited = await ok(service, EditTransfer(owner_id=OWNER, portfolio_id=a, transfer_id=a_to_b,
                                                amount_btc=D("0.8")))
        assert edited["status"] == "priced"
        arrived = next(t for t in (await ok(service, ListTransactions(owner_id=OWNER, portfolio_id=b)))["items"]
                       if t["kind"] == "transfer_in")
        assert D(arrived["metrics"]["moved_cost_usd"]) == D("16000")
        await check_transfers_balance(service, [a, b])
        for portfolio_id in (a, b):
            assert await differences(service.pool, await rebuild(service, portfolio_id), portfolio_id) == []
    finally:
        await service.pool.close()
