"""Return measures of SPEC: the time-weighted index (TWR, max drawdown) and the money-weighted IRR."""

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_UP, Context, Decimal
from typing import Any

ONE = Decimal(1)
PERCENT_PLACES = Decimal("1E-10")
WIDE = Context(prec=80)
"""Room for quantizing any percentage to 10 decimals."""
ZERO = Decimal(0)
YEAR_SECONDS = 365 * 86400


def percent(value: Decimal) -> Decimal:
    """Percentages are reported to 10 decimals (half away from zero, as Postgres rounds)."""
    room = WIDE if value.adjusted() < 60 else Context(prec=value.adjusted() + 20)
    return value.quantize(PERCENT_PLACES, rounding=ROUND_HALF_UP, context=room)


@dataclass(slots=True)
class ReturnIndex:
    """The TWR index I after the last trade, with the state needed to value it later and its drawdown so far."""

    index: Decimal = ONE
    value_after: Decimal = ZERO
    """V⁺ of the last trade: holdings just after it times its own price."""
    holdings_after: Decimal = ZERO
    peak: Decimal = ONE
    max_drawdown: Decimal = ZERO
    started: bool = False

    def index_at(self, price: Decimal) -> Decimal:
        """I(t) between trades: I_n × h_n × price_at(t) / V⁺_n (or I_n when V⁺_n = 0)."""
        if self.value_after == 0:
            return self.index
        return self.index * self.holdings_after * price / self.value_after

    def observe(self, index: Decimal) -> None:
        """Fold one observation of the index into the peak and the deepest fall."""
        if index > self.peak:
            self.peak = index
        elif self.peak > 0:
            fall = ONE - index / self.peak
            if fall > self.max_drawdown:
                self.max_drawdown = fall

    def apply(self, price: Decimal, holdings_after: Decimal, flow: Decimal,
              midnight_opens: Sequence[tuple[datetime, Decimal]] = ()) -> None:
        """Advance over one trade: the midnights before it, then the trade (flow = +cost for a buy, −proceeds)."""
        for _, open_price in midnight_opens:
            if self.started:
                self.observe(self.index_at(open_price))
        value_after = holdings_after * price
        if self.started and self.value_after > 0:
            self.index = self.index * (value_after - flow) / self.value_after
        self.started = True
        self.value_after, self.holdings_after = value_after, holdings_after
        self.observe(self.index)

    def folded(self, midnight_opens: Sequence[tuple[datetime, Decimal]]) -> "ReturnIndex":
        """A copy with the midnights after the last trade folded into its peak and drawdown."""
        probe = ReturnIndex(self.index, self.value_after, self.holdings_after, self.peak, self.max_drawdown,
                            self.started)
        if self.started:
            for _, open_price in midnight_opens:
                probe.observe(probe.index_at(open_price))
        return probe

    def valued_at(self, latest_price: Decimal | None) -> tuple[Decimal | None, Decimal | None]:
        """(twr_pct, max_drawdown_pct) at T of an index whose midnights up to T are folded in already."""
        if not self.started or latest_price is None:
            return None, None
        final = self.index_at(latest_price)
        drawdown = self.max_drawdown
        if final <= self.peak and self.peak > 0:  # as observe(final) would fold it, without changing this index
            drawdown = max(drawdown, ONE - final / self.peak)
        return percent((final - ONE) * 100), percent(drawdown * 100)

    def to_json(self) -> dict[str, Any]:
        return {"index": str(self.index), "value_after": str(self.value_after),
                "holdings_after": str(self.holdings_after), "peak": str(self.peak),
                "max_drawdown": str(self.max_drawdown), "started": self.started}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "ReturnIndex":
        return cls(Decimal(data["index"]), Decimal(data["value_after"]), Decimal(data["holdings_after"]),
                   Decimal(data["peak"]), Decimal(data["max_drawdown"]), bool(data["started"]))


IRR_SEARCH_LIMIT = 2048.0
"""|ln(1 + r)| searched: up to r = e^2048 − 1 (about 10^889 %), which a rate over a few minutes can reach."""


def irr_pct(cash_flows: Sequence[tuple[datetime, Decimal]]) -> Decimal | None:
    """The annual rate r > −1 with Σ CF_k (1+r)^(−years_k) = 0, as a percentage; None when there is no root.

    The root is searched in g = ln(1 + r) in binary floating point (a rate, not money), with the NPV scaled by its
    largest term so that no exponential overflows, then reported to 10 decimals of a percent."""
    if len(cash_flows) < 2:
        return None
    start = min(t for t, _ in cash_flows)
    flows = [(float(amount), (t - start).total_seconds() / YEAR_SECONDS) for t, amount in cash_flows]
    if all(a >= 0 for a, _ in flows) or all(a <= 0 for a, _ in flows):
        return None

    def scaled_npv_and_slope(g: float) -> tuple[float, float]:
        """NPV(g) and its slope, both divided by the same positive number: signs and Newton steps are exact."""
        top = max(-years * g for _, years in flows)
        value = slope = 0.0
        for amount, years in flows:
            term = amount * math.exp(-years * g - top)
            value += term
            slope -= years * term
        return value, slope

    bracket = _bracket_nearest_zero(lambda g: scaled_npv_and_slope(g)[0])
    if bracket is None:
        return None
    low, high = bracket
    if low == high:
        return _reported(_rate_from_log(low) * 100)
    f_low = scaled_npv_and_slope(low)[0]
    g = (low + high) / 2
    for _ in range(200):
        value, slope = scaled_npv_and_slope(g)
        if value == 0:
            break
        if (value > 0) == (f_low > 0):
            low, f_low = g, value
        else:
            high = g
        step = g - value / slope if slope else math.nan
        if abs(step - g) < 1e-13 * max(1.0, abs(g)):
            g = step  # converged: the root may sit on the bracket's edge, so never bisect away from it
            break
        g = step if low < step < high else (low + high) / 2
        if high - low < 1e-12 * max(1.0, abs(g)):
            break
    return _reported(_rate_from_log(g) * 100)


def _bracket_nearest_zero(npv: Callable[[float], float]) -> tuple[float, float] | None:
    """Two values of g around the root nearest g = 0 (or the same value twice at an exact root), or None when
    the NPV keeps its sign out to ±IRR_SEARCH_LIMIT. Steps outward, so a usual root costs a few evaluations."""
    at_zero = npv(0.0)
    if at_zero == 0:
        return 0.0, 0.0
    inner_up = inner_down = 0.0
    f_up = f_down = at_zero
    step = 0.5
    while step <= IRR_SEARCH_LIMIT:
        for inner, f_inner, outer in ((inner_up, f_up, step), (inner_down, f_down, -step)):
            f_outer = npv(outer)
            if f_outer == 0:
                return outer, outer
            if f_inner * f_outer < 0:
                return (inner, outer) if inner < outer else (outer, inner)
            if outer > 0:
                inner_up, f_up = outer, f_outer
            else:
                inner_down, f_down = outer, f_outer
        step *= 2
    return None


LARGEST_IRR_DIGITS = 90
"""An IRR of 10^90 % or more (reachable only by histories of minutes) is reported as none: money and percentages
travel as decimals of at most 100 digits before the point (contracts.types)."""


def _reported(rate_pct: Decimal) -> Decimal | None:
    return None if rate_pct.adjusted() >= LARGEST_IRR_DIGITS else percent(rate_pct)


def _rate_from_log(g: float) -> Decimal:
    """r = e^g − 1 as a Decimal: in floating point while it fits, else with Decimal's exponential."""
    if g < 700:
        return Decimal(repr(math.expm1(g)))
    return Decimal(repr(g)).exp(Context(prec=30)) - ONE
