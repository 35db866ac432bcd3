"""The gateway's read model of portfolios: each one's latest view as ready JSON bytes, bounded by an LRU.

It is fed by portfolio.updated, by the views that writes answer, and by the request/reply read of a cold entry.
A newer stamp always wins, so an event that arrives late never overwrites what a later one said."""

from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime

EPOCH = datetime.min


@dataclass(frozen=True, slots=True, order=True)
class Stamp:
    """How new a view is: its version first; at one version (a price tick, the IRR pass) an event beats a view
    read by request/reply, and a later event beats an earlier one."""

    version: int
    from_event: bool = False
    occurred_at: datetime = EPOCH


@dataclass(frozen=True, slots=True)
class Entry:
    portfolio_id: str
    owner_id: str
    stamp: Stamp
    created_at: datetime | None
    body: bytes | None
    """The portfolio's JSON as served; None for a deleted portfolio (kept so an older event cannot revive it)."""

    @property
    def deleted(self) -> bool:
        return self.body is None

    @property
    def list_order(self) -> tuple[datetime, str]:
        """Oldest first, as the portfolio service lists them."""
        return self.created_at or EPOCH, self.portfolio_id


class PortfolioReadModel:
    """Entries by portfolio id, least recently used first, and for some owners the complete set of portfolios.

    An owner's set is complete once a full list was loaded, and stays complete as events create and delete their
    portfolios; evicting any entry of the owner makes it incomplete again (the list is then loaded anew)."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.entries: OrderedDict[str, Entry] = OrderedDict()
        self.by_owner: dict[str, set[str]] = {}
        self.complete_owners: set[str] = set()
        self.generation = 0
        """Raised by every clear(): a load begun before it must not be kept after it."""

    def __len__(self) -> int:
        return len(self.entries)

    def clear(self) -> None:
        """Forget everything (the event feed was interrupted, so any entry may be stale)."""
        self.entries.clear()
        self.by_owner.clear()
        self.complete_owners.clear()
        self.generation += 1

    def get(self, portfolio_id: str) -> Entry | None:
        entry = self.entries.get(portfolio_id)
        if entry is not None:
            self.entries.move_to_end(portfolio_id)
        return entry

    def put(self, entry: Entry) -> bool:
        """Keep the entry unless the one held is as new or newer; True when it was kept."""
        held = self.entries.get(entry.portfolio_id)
        if held is not None and held.stamp >= entry.stamp:
            return False
        self.entries[entry.portfolio_id] = entry
        self.entries.move_to_end(entry.portfolio_id)
        owned = self.by_owner.setdefault(entry.owner_id, set())
        if entry.deleted:
            owned.discard(entry.portfolio_id)
        else:
            owned.add(entry.portfolio_id)
        while len(self.entries) > self.capacity:
            self._evict_oldest()
        return True

    def _evict_oldest(self) -> None:
        _, evicted = self.entries.popitem(last=False)
        owned = self.by_owner.get(evicted.owner_id)
        if owned is not None:
            owned.discard(evicted.portfolio_id)
            if not owned:
                del self.by_owner[evicted.owner_id]
        self.complete_owners.discard(evicted.owner_id)

    def put_owner_list(self, owner_id: str, entries: list[Entry]) -> None:
        """Every portfolio of the owner, as one full list read answered: their set is complete from now on.

        Portfolios the model learned of meanwhile (created after that read) stay in the set."""
        needed = {entry.portfolio_id for entry in entries} | self.by_owner.get(owner_id, set())
        for entry in entries:
            self.put(entry)
        if all(portfolio_id in self.entries for portfolio_id in needed):  # none was evicted to make room
            self.complete_owners.add(owner_id)

    def owner_list(self, owner_id: str) -> list[Entry] | None:
        """The owner's portfolios, oldest first, or None when the model does not hold all of them."""
        if owner_id not in self.complete_owners:
            return None
        entries = [self.entries[portfolio_id] for portfolio_id in self.by_owner.get(owner_id, ())]
        for entry in entries:
            self.entries.move_to_end(entry.portfolio_id)
        return sorted(entries, key=lambda entry: entry.list_order)
