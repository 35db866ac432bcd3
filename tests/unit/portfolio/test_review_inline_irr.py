"""Review finding: the IRR computed with every write (portfolios up to INLINE_IRR_TRADES counted trades) must stay
the "few ms at most" its docstring promises; the write path's whole CPU budget is about 4.4 ms per trade."""

import math
import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from portfolio.domain import irr_at
from portfolio.domain import returns as returns_module
from portfolio.projection import INLINE_IRR_TRADES

EXPONENTIALS_BUDGET = 5_000
"""About 1.5 ms of exponentials and their loop here (math.exp in the NPV costs ~0.3 µs, the Python around it ~1 µs)."""


class CountingMath:
    def __init__(self) -> None:
        self.exps = 0

    def exp(self, value: float) -> float:
        self.exps += 1
        return math.exp(value)

    def __getattr__(self, name: str):
        return getattr(math, name)


def test_the_irr_computed_inline_with_a_write_stays_within_a_few_ms(monkeypatch) -> None:
    rng = random.Random(7)
    start = datetime(2024, 1, 1, tzinfo=UTC)
    flows = [(start + timedelta(hours=7 * i),
              -Decimal(rng.randint(100, 5000)) if rng.random() < 0.8 else Decimal(rng.randint(100, 3000)))
             for i in range(INLINE_IRR_TRADES)]
    counting = CountingMath()
    monkeypatch.setattr(returns_module, "math", counting)
    irr_at(flows, Decimal(400_000), start + timedelta(hours=7 * INLINE_IRR_TRADES))
    assert counting.exps <= EXPONENTIALS_BUDGET, (
        f"{counting.exps} exponentials for {INLINE_IRR_TRADES} flows on every write")
