"""Transfers through the public HTTP API: create, another user's destination, edit, delete, Idempotency-Key."""

from decimal import Decimal
from uuid import uuid4

from tests.e2e.conftest import wait_for
from tests.e2e.test_user_journey import open_at

D = Decimal
AT = "2024-03-01T12:30:00Z"


async def test_move_btc_between_two_portfolios_edit_and_delete(system, alice, bob) -> None:
    api = alice.client
    source = (await api.post("/v1/portfolios", json={"name": "Exchange", "cost_basis_method": "fifo"})).json()
    destination = (await api.post("/v1/portfolios", json={"name": "Vault"})).json()
    bobs = (await bob.client.post("/v1/portfolios", json={"name": "Bob's"})).json()
    for amount, at, price in (("1", "2024-02-01T12:00:00Z", "40000"), ("1", "2024-02-10T12:00:00Z", "50000")):
        answer = await api.post(f"/v1/portfolios/{source['portfolio_id']}/transactions",
                                json={"side": "buy", "amount_btc": amount, "at": at, "price_usd": price})
        assert answer.status_code == 202, answer.text
    transfers = f"/v1/portfolios/{source['portfolio_id']}/transfers"

    # another user's destination is a 404, so is the same portfolio a 422, and more than held a 422
    theirs = await api.post(transfers, json={"to_portfolio_id": bobs["portfolio_id"], "amount_btc": "0.5", "at": AT})
    assert theirs.status_code == 404 and theirs.json()["error"]["code"] == "not_found"
    itself = await api.post(transfers, json={"to_portfolio_id": source["portfolio_id"], "amount_btc": "0.5",
                                             "at": AT})
    assert itself.status_code == 422
    too_much = await api.post(transfers, json={"to_portfolio_id": destination["portfolio_id"], "amount_btc": "3",
                                               "at": AT})
    assert too_much.status_code == 422 and too_much.json()["error"]["code"] == "insufficient_holdings"
    as_number = await api.post(transfers, json={"to_portfolio_id": destination["portfolio_id"], "amount_btc": 1,
                                                "at": AT})
    assert as_number.status_code == 422
    bobs_side = await bob.client.post(transfers, json={"to_portfolio_id": bobs["portfolio_id"], "amount_btc": "0.5",
                                                       "at": AT})
    assert bobs_side.status_code == 404

    key = {"Idempotency-Key": uuid4().hex}
    body = {"to_portfolio_id": destination["portfolio_id"], "amount_btc": "1.5", "at": AT, "fee_btc": "0.0005",
            "note": "to cold storage"}
    created = await api.post(transfers, json=body, headers=key)
    assert created.status_code == 202, created.text
    again = await api.post(transfers, json=body, headers=key)
    assert again.json() == created.json() and again.headers.get("Idempotent-Replayed") == "true"
    out = created.json()
    link = out["transfer"]
    price = open_at(AT)

    async def arrived():
        items = (await api.get(f"/v1/portfolios/{destination['portfolio_id']}/transactions")).json()
        return items if items and items[0]["status"] == "priced" else None
    received = (await wait_for(arrived))[0]
    assert received["kind"] == "transfer_in" and D(received["amount_btc"]) == D("1.4995")
    assert D(received["price_usd"]) == price
    assert D(received["metrics"]["moved_cost_usd"]) == D("40000") + D("25000")
    listed = (await api.get(f"/v1/portfolios/{source['portfolio_id']}/transactions")).json()
    assert [t["kind"] for t in listed] == ["transfer_out", "trade", "trade"]
    assert len([t for t in listed if t["kind"] == "transfer_out"]) == 1  # the replayed POST moved nothing again
    exported = await api.get(f"/v1/portfolios/{source['portfolio_id']}/transactions/export?format=csv")
    assert len(exported.text.strip().splitlines()) == 3  # the header and the two buys: a transfer is no trade

    vault = (await api.get(f"/v1/portfolios/{destination['portfolio_id']}")).json()["metrics"]
    exchange = (await api.get(f"/v1/portfolios/{source['portfolio_id']}")).json()["metrics"]
    assert D(vault["holdings_btc"]) == D("1.4995") and D(exchange["holdings_btc"]) == D("0.5")
    assert D(vault["cost_basis_usd"]) + D(exchange["cost_basis_usd"]) == D("90000")
    assert D(vault["realized_pnl_usd"]) == 0 and D(exchange["realized_pnl_usd"]) == 0

    # bob can't see, edit or delete it
    path = f"/v1/portfolios/{destination['portfolio_id']}/transfers/{link['transfer_id']}"
    assert (await bob.client.patch(path, json={"amount_btc": "1"})).status_code == 404
    assert (await bob.client.delete(path)).status_code == 404

    edited = await api.patch(path, json={"amount_btc": "1", "fee_btc": "0"})
    assert edited.status_code == 200, edited.text
    assert edited.json()["kind"] == "transfer_in"

    async def moved_one():
        vault = (await api.get(f"/v1/portfolios/{destination['portfolio_id']}")).json()["metrics"]
        return vault if D(vault["holdings_btc"]) == 1 and D(vault["cost_basis_usd"]) == D("40000") else None
    await wait_for(moved_one)

    deleted = await api.delete(path)
    assert deleted.status_code == 204
    assert (await api.get(f"/v1/portfolios/{destination['portfolio_id']}/transactions")).json() == []
    exchange = (await api.get(f"/v1/portfolios/{source['portfolio_id']}")).json()["metrics"]
    assert D(exchange["holdings_btc"]) == 2 and D(exchange["cost_basis_usd"]) == D("90000")
    assert (await api.delete(path)).status_code == 404
