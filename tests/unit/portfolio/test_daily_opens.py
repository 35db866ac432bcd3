"""The daily-opens cache answers ranges by binary search exactly as a walk over the days would."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st
from portfolio.domain import count_midnights, midnights_between
from portfolio.market_data import DailyOpens

START = datetime(2024, 1, 1, tzinfo=UTC)
moments = st.integers(min_value=0, max_value=60 * 24 * 90).map(lambda minutes: START + timedelta(minutes=minutes))


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.integers(min_value=0, max_value=80), st.none() | st.integers(1, 10**6), max_size=60),
       moments, moments)
def test_between_and_the_count_of_midnights_match_a_walk_over_the_days(prices, after, until):
    opens = DailyOpens(source=None)  # type: ignore[arg-type]
    opens.learn((START + timedelta(days=day), None if price is None else Decimal(price))
                for day, price in prices.items())
    walked = [(day, opens.known[day]) for day in midnights_between(after, until) if opens.known.get(day) is not None]
    assert list(opens.between(after, until)) == walked
    assert count_midnights(after, until) == len(midnights_between(after, until))
