"""What the MT5 server holds, read from the rows the Web API stand-in serves (not through the
product), for the tests that run the product through the Web API client."""

from bonuses.models import CreditIntent
from gateways.models import SimulatedMT5Account, SimulatedMT5Deal
from gateways.mt5.types import COMMENT_MAX_LENGTH


def on_server(login):
    """What the MT5 server holds for `login` (read from its rows, not through the product)."""
    return SimulatedMT5Account.objects.get(pk=login)


def deals_of(intent):
    """The server's deals carrying `intent`'s op id."""
    return SimulatedMT5Deal.objects.filter(account_id=intent.login, comment=intent.op_id)


def assert_written_once(login):
    """Every confirmed write that leaves a deal left exactly one, its op id in the comment
    (within the 31 characters MT5 keeps), and the deal is the one the ledger recorded."""
    intents = CreditIntent.objects.filter(login=login).exclude(kind="set_leverage")
    assert intents.exists()
    for intent in intents:
        assert intent.status == "done", (intent, intent.last_error)
        assert len(intent.op_id) <= COMMENT_MAX_LENGTH <= 31
        if intent.kind == "close_positions":
            assert intent.deal_id in set(deals_of(intent).values_list("ticket", flat=True))
            continue
        [deal] = deals_of(intent)
        assert deal.ticket == intent.deal_id
        assert abs(deal.profit) == intent.amount
