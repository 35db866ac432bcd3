"""The portfolio list's totals (Decimal sums; the total's ROI is its net over its investment) and BTC in sats."""

from decimal import Decimal

import pytest
from bitfolio_web import formatting as fmt
from bitfolio_web.totals import Totals, portfolio_totals, price_line
from bitfolio_web.viewer import Viewer
from hypothesis import given
from hypothesis import strategies as st


def portfolio(value: str, net: str, invested: str, held: str) -> dict:
    return {"metrics": {"current_value_usd": value, "net_result_usd": net, "invested_usd": invested,
                        "holdings_btc": held}}


def test_totals_add_the_portfolios_figures_and_take_roi_over_the_total_invested() -> None:
    totals = portfolio_totals([portfolio("75000", "9975", "100020", "1.5"),
                               portfolio("0.1", "-0.2", "0.3", "0.00000001")])
    assert totals == Totals(value_usd=Decimal("75000.1"), net_result_usd=Decimal("9974.8"),
                            invested_usd=Decimal("100020.3"), holdings_btc=Decimal("1.50000001"),
                            roi_pct=Decimal("9974.8") / Decimal("100020.3") * 100)
    # not the mean of the two ROIs (9.97 % and -66.7 %)
    assert fmt.pct(totals.roi_pct) == "+9.97%"


def test_totals_of_nothing_invested_have_no_roi() -> None:
    assert portfolio_totals([]) == Totals(Decimal(0), Decimal(0), Decimal(0), Decimal(0), None)
    assert portfolio_totals([portfolio("0", "0", "0", "0")]).roi_pct is None
    assert fmt.pct(None) == "—"


def test_the_latest_price_line_shows_the_price_and_its_time_in_the_browsers_zone() -> None:
    latest = {"price_usd": "93429.21", "as_of": "2024-12-31T23:00:00Z"}
    assert price_line(latest, "Europe/Paris") == "BTC $93,429.21 · as of 2025-01-01 00:00 CET"
    assert price_line(None, "UTC") == "No BTC price yet"


@pytest.mark.parametrize(("amount", "as_btc", "as_sats"), [
    ("1", "1.00000000 BTC", "100,000,000 sats"),
    ("0.00000001", "0.00000001 BTC", "1 sat"),
    ("21000000", "21,000,000.00000000 BTC", "2,100,000,000,000,000 sats"),
    ("-0.5", "-0.50000000 BTC", "-50,000,000 sats"),
    ("0", "0.00000000 BTC", "0 sats"),
])
def test_btc_amounts_are_shown_in_btc_or_whole_sats(amount: str, as_btc: str, as_sats: str) -> None:
    assert fmt.btc(amount) == Viewer(in_sats=False).btc(amount) == as_btc
    assert fmt.btc(amount, in_sats=True) == Viewer(in_sats=True).btc(amount) == as_sats
    assert Viewer().btc(None) == Viewer(in_sats=True).btc(None) == "—"


@given(st.integers(min_value=0, max_value=21_000_000 * 100_000_000))
def test_sats_are_the_btc_amount_times_a_hundred_million_exactly(sats: int) -> None:
    amount = Decimal(sats) / fmt.SATS_PER_BTC
    assert fmt.btc(amount, in_sats=True) == f"{sats:,} {'sat' if sats == 1 else 'sats'}"
    assert Decimal(fmt.btc(amount).removesuffix(" BTC").replace(",", "")) * fmt.SATS_PER_BTC == sats


def test_only_a_demo_viewer_is_read_only() -> None:
    assert Viewer(read_only=True).can_write is False and Viewer().can_write is True
