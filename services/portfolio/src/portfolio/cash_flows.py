"""The IRR's cash flows of the portfolios written last, remembered after commit, so that a trade appended to a small
portfolio needs no read of every flow back from the database (its statement writes the row, the figures and the
metrics at once)."""

from collections import OrderedDict
from datetime import datetime
from decimal import Decimal

Flows = tuple[tuple[datetime, Decimal], ...]

MEMO_PORTFOLIOS = 1000
"""At most this many portfolios' flows are kept: up to 100 flows each (above that the IRR pass reads them), about
10 MB at worst; a portfolio not kept reads its flows back with its figures, as before."""


class CashFlowMemo:
    """Each remembered portfolio's counted cash flows as of a version of its stream. Any write appends events, so
    a version that moved on (here or in another copy) makes the entry useless, never wrong."""

    def __init__(self, size: int = MEMO_PORTFOLIOS) -> None:
        self.size = size
        self.entries: OrderedDict[str, tuple[int, Flows]] = OrderedDict()

    def at(self, portfolio_id: str, version: int | None) -> Flows | None:
        entry = self.entries.get(portfolio_id)
        if entry is None or entry[0] != version:
            return None
        self.entries.move_to_end(portfolio_id)
        return entry[1]

    def committed(self, written: dict[str, tuple[int, Flows | None]]) -> None:
        """What a batch committed: each portfolio's version and flows after it (None: unknown, forget it)."""
        for portfolio_id, (version, flows) in written.items():
            if flows is None:
                self.entries.pop(portfolio_id, None)
                continue
            self.entries[portfolio_id] = (version, flows)
            self.entries.move_to_end(portfolio_id)
        while len(self.entries) > self.size:
            self.entries.popitem(last=False)
