"""Reconciliation: the ledger's credit per account against the server's. Reads only.

Ledger credit = confirmed (done) credit-ins minus confirmed credit-outs. Drift = server credit
minus ledger credit: positive means credit on the server the system did not grant (a dealer's
hand, or credit older than the system); negative means credit the ledger says is there and
is not. Writes still pending or unknown make a temporary drift; `intents_resolve` settles them.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from django.db.models import Sum

from bonuses.models import CreditIntent
from core.money import ZERO
from gateways.mt5 import get_mt5_gateway

CHUNK = 200


@dataclass(frozen=True)
class CreditDrift:
    """One account whose server credit differs from the ledger's."""

    login: int
    ledger_credit: Decimal
    server_credit: Decimal
    drift: Decimal


def credit_reconcile(*, logins: Iterable[int] | None = None) -> list[CreditDrift]:
    """Compare ledger and server credit for `logins` (default: every login in the ledger)
    and return the accounts that differ. Changes nothing. A login the server does not know
    counts as holding no credit."""
    if logins is None:
        logins = (
            CreditIntent.objects.filter(
                kind__in=[CreditIntent.Kind.CREDIT_IN, CreditIntent.Kind.CREDIT_OUT]
            )
            .order_by()
            .values_list("login", flat=True)
            .distinct()
        )
    wanted = sorted({int(login) for login in logins})
    gateway = get_mt5_gateway()
    drifts: list[CreditDrift] = []
    for start in range(0, len(wanted), CHUNK):
        chunk = wanted[start : start + CHUNK]
        ledger = _ledger_credit(chunk)
        accounts = gateway.get_accounts(chunk)
        for login in chunk:
            ledger_credit = ledger.get(login, ZERO)
            account = accounts.get(login)
            server_credit = account.credit if account is not None else ZERO
            if server_credit != ledger_credit:
                drifts.append(
                    CreditDrift(
                        login=login,
                        ledger_credit=ledger_credit,
                        server_credit=server_credit,
                        drift=server_credit - ledger_credit,
                    )
                )
    return drifts


def _ledger_credit(logins: list[int]) -> dict[int, Decimal]:
    totals = (
        CreditIntent.objects.filter(
            login__in=logins,
            status=CreditIntent.Status.DONE,
            kind__in=[CreditIntent.Kind.CREDIT_IN, CreditIntent.Kind.CREDIT_OUT],
        )
        .values("login", "kind")
        .annotate(total=Sum("amount"))
        .order_by()
    )
    credit: dict[int, Decimal] = {}
    for row in totals:
        sign = 1 if row["kind"] == CreditIntent.Kind.CREDIT_IN else -1
        credit[row["login"]] = credit.get(row["login"], ZERO) + sign * (row["total"] or ZERO)
    return {login: value.quantize(Decimal("0.01")) for login, value in credit.items()}
