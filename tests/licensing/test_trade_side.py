"""`POST licenses/trades/`: the side in any case, or long/short, is stored as BUY or SELL."""

import pytest

from licensing.models import ReportedTrade

from .test_trades_and_subscriptions import TRADES, trade

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("sent", "stored"),
    [
        ("buy", "BUY"),
        ("BUY", "BUY"),
        ("Buy", "BUY"),
        ("long", "BUY"),
        ("LONG", "BUY"),
        ("sell", "SELL"),
        ("Sell", "SELL"),
        ("SELL", "SELL"),
        ("short", "SELL"),
        ("Short", "SELL"),
    ],
)
def test_a_side_in_any_case_or_as_long_and_short_is_stored_as_buy_or_sell(
    api, make_license, sent, stored
):
    _, key = make_license()

    response = api.post(TRADES, trade(side=sent), format="json", HTTP_X_LICENSE_KEY=key)

    assert response.status_code == 201, response.json()
    assert response.json()["side"] == stored
    assert ReportedTrade.objects.get().side == stored


# "\u017fell" (long s) upper-cases to SELL and "\u0455ell" has a Cyrillic s: look-alikes, refused.
NOT_SIDES = ["hold", "", " buy", "BUYY", "\u017fell", "\u0455ell", 1, None, ["buy"]]


@pytest.mark.parametrize("bad", NOT_SIDES)
def test_anything_else_is_a_400_on_the_side_field(api, make_license, bad):
    _, key = make_license()

    response = api.post(TRADES, trade(side=bad), format="json", HTTP_X_LICENSE_KEY=key)

    assert response.status_code == 400
    assert "side" in response.json()
    assert not ReportedTrade.objects.exists()
