"""Request and response bodies of the public API (results reuse the contract's views)."""

from datetime import datetime
from decimal import Decimal
from typing import Literal

from contracts.portfolios import CostBasisMethod, Side
from contracts.types import BtcAmount, BtcFee, Note, PlainText, UsdFee, UsdGoal, UsdPrice, UtcDatetime
from pydantic import BaseModel, ConfigDict, Field

# Money, amounts, times and notes are the contract's own types: the API refuses exactly what a command would.
Text = PlainText
AT_DESCRIPTION = ("ISO 8601 with a time zone, or unix seconds; between 1970-01-01T00:00:00Z and "
                  "9999-12-31T23:59:59Z")


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Credentials(Body):
    email: str = Field(max_length=320, examples=["satoshi@example.com"])
    password: str = Field(max_length=1024, examples=["correct horse battery staple"])


class UserOut(BaseModel):
    id: str
    email: str
    is_demo: bool
    created_at: datetime


class TokenPair(BaseModel):
    access_token: str
    refresh_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int = Field(description="seconds until the access token expires")


class RefreshRequest(Body):
    refresh_token: str = Field(min_length=10, max_length=200)


class LogoutRequest(Body):
    refresh_token: str | None = Field(default=None, max_length=200)


class PortfolioCreate(Body):
    name: Text = Field(min_length=1, max_length=100, examples=["Long-term stack"])
    cost_basis_method: CostBasisMethod = CostBasisMethod.AVERAGE
    goal_usd: UsdGoal | None = Field(default=None, examples=["100000"])


class PortfolioPatch(Body):
    name: Text | None = Field(default=None, min_length=1, max_length=100)
    goal_usd: UsdGoal | None = Field(default=None, description="null clears the goal")
    cost_basis_method: CostBasisMethod | None = None


class TransactionCreate(Body):
    side: Side
    amount_btc: BtcAmount = Field(examples=["0.05"], description="BTC as a decimal string: more than 0, at most "
                                                                 "21,000,000, at most 8 decimals")
    at: UtcDatetime = Field(description=AT_DESCRIPTION, examples=["2024-03-01T10:00:00Z"])
    fee_usd: UsdFee = Field(default=Decimal(0), examples=["1.50"], description="USD, 0 to 10^15")
    price_usd: UsdPrice | None = Field(default=None, description="leave out to use the market price at `at`")
    note: Note | None = Field(default=None, description="at most 500 characters, no control characters")


class TransactionPatch(Body):
    amount_btc: BtcAmount | None = None
    at: UtcDatetime | None = Field(default=None, description=AT_DESCRIPTION)
    fee_usd: UsdFee | None = None
    price_usd: UsdPrice | None = Field(default=None, description="null returns the trade to the market price")
    note: Note | None = None


class TransferCreate(Body):
    to_portfolio_id: str = Field(min_length=1, max_length=100, description="another of your portfolios")
    amount_btc: BtcAmount = Field(examples=["0.25"], description="BTC that leaves this portfolio: more than 0, at "
                                                                 "most 8 decimals")
    at: UtcDatetime = Field(description=AT_DESCRIPTION, examples=["2024-03-01T10:00:00Z"])
    fee_btc: BtcFee = Field(default=Decimal(0), examples=["0.0001"],
                            description="BTC lost on the way; the destination receives amount_btc − fee_btc")
    note: Note | None = Field(default=None, description="at most 500 characters, no control characters")


class TransferPatch(Body):
    amount_btc: BtcAmount | None = None
    at: UtcDatetime | None = Field(default=None, description=AT_DESCRIPTION)
    fee_btc: BtcFee | None = None
    note: Note | None = None
