"""Tables of the portfolio service: the event log, inbox and outbox, and the projections read by queries."""

import asyncpg
import sqlalchemy as sa
from contracts.database import keep_session
from sqlalchemy.dialects.postgresql import JSONB

metadata = sa.MetaData()
N = sa.Numeric
TS = sa.DateTime(timezone=True)

events = sa.Table(
    "events", metadata,
    sa.Column("stream_id", sa.Text, primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("position", sa.BigInteger, nullable=False, unique=True),
    sa.Column("type", sa.Text, nullable=False),
    sa.Column("payload", JSONB, nullable=False),
    sa.Column("metadata", JSONB, nullable=False),
    sa.Column("recorded_at", TS, server_default=sa.func.now(), nullable=False),
)
"""The append-only log, pyeventsourcing's shape: (stream, version) with a global gap-free position."""

event_position = sa.Table(
    "event_position", metadata,
    sa.Column("id", sa.Boolean, primary_key=True, server_default=sa.true()),
    sa.Column("last_position", sa.BigInteger, nullable=False, server_default="0"),
    sa.CheckConstraint("id", name="event_position_single_row"),
)
"""One row: positions are taken from it inside the appending transaction, so they never have gaps."""

inbox = sa.Table(
    "inbox", metadata,
    sa.Column("message_id", sa.Text, primary_key=True),
    sa.Column("reply", sa.LargeBinary, nullable=True),
    sa.Column("handled_at", TS, server_default=sa.func.now(), nullable=False),
)

outbox = sa.Table(
    "outbox", metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("exchange", sa.Text, nullable=False),
    sa.Column("routing_key", sa.Text, nullable=False),
    sa.Column("message_id", sa.Text, nullable=False),
    sa.Column("correlation_id", sa.Text, nullable=True),
    sa.Column("body", sa.LargeBinary, nullable=False),
    sa.Column("created_at", TS, server_default=sa.func.now(), nullable=False),
)

projection_positions = sa.Table(
    "projection_positions", metadata,
    sa.Column("name", sa.Text, primary_key=True),
    sa.Column("position", sa.BigInteger, nullable=False),
)

portfolios = sa.Table(
    "portfolios", metadata,
    sa.Column("portfolio_id", sa.Text, primary_key=True),
    sa.Column("owner_id", sa.Text, nullable=False, index=True),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("method", sa.Text, nullable=False),
    sa.Column("goal_usd", N),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("created_at", TS, nullable=False),
    sa.Column("updated_at", TS, nullable=False),
    sa.Column("deleted", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("next_sequence", sa.BigInteger, nullable=False, server_default="1"),
    sa.Column("ledger", JSONB, nullable=False),
    sa.Column("metrics", JSONB, nullable=False),
    # The few figures a price tick moves, kept as columns so one set-based UPDATE serves every portfolio.
    sa.Column("holdings_btc", N, nullable=False, server_default="0"),
    sa.Column("cost_basis_usd", N, nullable=False, server_default="0"),
    sa.Column("invested_usd", N, nullable=False, server_default="0"),
    sa.Column("realized_pnl_usd", N, nullable=False, server_default="0"),
    sa.Column("twr_index", N, nullable=False, server_default="1"),
    sa.Column("twr_value_after", N, nullable=False, server_default="0"),
    sa.Column("twr_holdings_after", N, nullable=False, server_default="0"),
    sa.Column("twr_started", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("tail_peak", N, nullable=False, server_default="1"),
    sa.Column("tail_max_drawdown", N, nullable=False, server_default="0"),
    # Held sells (see domain/sell_holds): the stored counts show them as pending or failed.
    sa.Column("held_pending", sa.Integer, nullable=False, server_default="0"),
    sa.Column("held_failed", sa.Integer, nullable=False, server_default="0"),
    sa.Column("irr_due", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("repair_from", TS),
)

transactions = sa.Table(
    "transactions", metadata,
    sa.Column("transaction_id", sa.Text, primary_key=True),
    sa.Column("portfolio_id", sa.Text, nullable=False),
    sa.Column("sequence", sa.BigInteger, nullable=False),
    sa.Column("side", sa.Text, nullable=False),
    sa.Column("amount_btc", N, nullable=False),
    sa.Column("at", TS, nullable=False),
    sa.Column("fee_usd", N, nullable=False),
    sa.Column("price_usd", N),
    sa.Column("price_source", sa.Text),
    sa.Column("price_hour", sa.BigInteger),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("failure_reason", sa.Text),
    sa.Column("failure_detail", sa.Text),
    sa.Column("note", sa.Text),
    sa.Column("price_request_id", sa.Text),
    sa.Column("recorded_at", TS, nullable=False),
    sa.Column("updated_at", TS, nullable=False),
    sa.Column("cost_usd", N),
    sa.Column("proceeds_usd", N),
    sa.Column("cost_basis_sold_usd", N),
    sa.Column("realized_pnl_usd", N),
    sa.Column("hold_reason", sa.Text),
    sa.Column("hold_detail", sa.Text),
    # Transfers between portfolios: each side is a transaction of its portfolio, linked to the other side.
    sa.Column("kind", sa.Text, nullable=False, server_default="trade"),
    sa.Column("fee_btc", N),
    sa.Column("transfer_id", sa.Text),
    sa.Column("counterpart_portfolio_id", sa.Text),
    sa.Column("counterpart_transaction_id", sa.Text),
    sa.Column("transfer_lots", JSONB),
    sa.Column("moved_cost_usd", N),
    sa.Column("moved_value_usd", N),
    sa.Index("transactions_timeline", "portfolio_id", "at", "sequence"),
    sa.Index("transactions_transfer", "portfolio_id", "transfer_id", postgresql_where=sa.text("transfer_id IS NOT NULL")),
)

market = sa.Table(
    "market", metadata,
    sa.Column("id", sa.Boolean, primary_key=True, server_default=sa.true()),
    sa.Column("hour", sa.BigInteger, nullable=False),
    sa.Column("price_usd", N, nullable=False),
    sa.Column("as_of", TS, nullable=False),
    sa.CheckConstraint("id", name="market_single_row"),
)
"""The latest price known to this service (from price.ticked or price.latest)."""

ledger_checkpoints = sa.Table(
    "ledger_checkpoints", metadata,
    sa.Column("portfolio_id", sa.Text, primary_key=True),
    sa.Column("trade_count", sa.Integer, primary_key=True),
    sa.Column("last_at", TS, nullable=False),
    sa.Column("last_sequence", sa.BigInteger, nullable=False),
    sa.Column("ledger", JSONB, nullable=False),
)
"""The ledger after every CHECKPOINT_EVERY priced trades: a back-dated change replays from the last one before it.
A cache of the projection: dropped by a replay and rebuilt on the next recomputation."""

daily_opens = sa.Table(
    "daily_opens", metadata,
    sa.Column("day", TS, primary_key=True),
    sa.Column("open_usd", N),
)
"""price_at(00:00 UTC) per day, from price.range; NULL where no candle exists. Used for max drawdown."""


async def create_pool(dsn: str) -> asyncpg.Pool:
    return await asyncpg.create_pool(dsn, min_size=1, max_size=10, reset=keep_session)
