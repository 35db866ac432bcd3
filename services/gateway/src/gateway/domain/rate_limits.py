"""Sliding-window counters for failed logins and request budgets (pure: the caller passes the time)."""

from collections import deque
from dataclasses import dataclass, field


@dataclass
class SlidingWindow:
    """At most `limit` events per `seconds` for each key."""

    limit: int
    seconds: float
    events: dict[str, deque[float]] = field(default_factory=dict)

    def _recent(self, key: str, now: float) -> deque[float]:
        times = self.events.setdefault(key, deque())
        while times and times[0] <= now - self.seconds:
            times.popleft()
        if not times:
            self.events.pop(key, None)
            times = self.events.setdefault(key, deque())
        return times

    def retry_after(self, key: str, now: float) -> int:
        """Seconds until one more event is allowed (0 when allowed now)."""
        times = self._recent(key, now)
        if len(times) < self.limit:
            return 0
        return max(1, int(times[0] + self.seconds - now + 0.999))

    def record(self, key: str, now: float) -> None:
        self._recent(key, now).append(now)

    def clear(self, key: str) -> None:
        self.events.pop(key, None)
