"""Request and response bodies of the public API (results reuse the contract's views)."""

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from contracts.portfolios import CostBasisMethod, Side
from contracts.types import decimal_text
from pydantic import AfterValidator, AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field, PlainSerializer


def _exact(value: Any) -> Any:
    """JSON numbers arrive as floats; their shortest text is what the client wrote, so read that exactly."""
    if isinstance(value, float):
        return Decimal(repr(value))
    return value


def _printable(text: str | None) -> str | None:
    if text is not None and any((ord(c) < 32 and c not in "\t") or ord(c) == 127 for c in text):
        raise ValueError("must not contain control characters")
    return text


Text = Annotated[str, AfterValidator(_printable)]

MoneyIn = Annotated[Decimal, BeforeValidator(_exact), Field(allow_inf_nan=False),
                    PlainSerializer(decimal_text, return_type=str, when_used="json")]


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
    goal_usd: MoneyIn | None = Field(default=None, gt=0, examples=["100000"])


class PortfolioPatch(Body):
    name: Text | None = Field(default=None, min_length=1, max_length=100)
    goal_usd: MoneyIn | None = Field(default=None, gt=0, description="null clears the goal")
    cost_basis_method: CostBasisMethod | None = None


class TransactionCreate(Body):
    side: Side
    amount_btc: MoneyIn = Field(examples=["0.05"])
    at: AwareDatetime = Field(description="ISO 8601 with a time zone, or unix seconds",
                              examples=["2024-03-01T10:00:00Z"])
    fee_usd: MoneyIn = Field(default=Decimal(0), examples=["1.50"])
    price_usd: MoneyIn | None = Field(default=None, description="leave out to use the market price at `at`")
    note: Text | None = Field(default=None, max_length=500)


class TransactionPatch(Body):
    amount_btc: MoneyIn | None = None
    at: AwareDatetime | None = None
    fee_usd: MoneyIn | None = None
    price_usd: MoneyIn | None = Field(default=None, description="null returns the trade to the market price")
    note: Text | None = Field(default=None, max_length=500)
