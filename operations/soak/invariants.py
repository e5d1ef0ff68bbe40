"""What must hold after the soak, checked on the database (and on what the client saw).

Each check reads the rows of one `Scope` (the soak's campaign, logins, sessions, the time it
started) and returns a `Check`: whether it held, what it counted, and up to a few examples of
what broke it. None of them writes; the ledger check asks the MT5 server for its credit.
"""

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db.models import Count, Q, Sum
from django.utils import timezone

from bonuses.models import Bonus, CreditIntent
from bonuses.services import credit_reconcile
from delivery.models import Delivery, DeliveryAttempt
from demo_pool.models import PressPass
from gateways.broker.simulated import STARTING_BALANCE, trade_profit
from gateways.errors import TransientGatewayError
from gateways.models import SimulatedBrokerAccount, SimulatedBrokerTrade, SimulatedMT5Deal
from gateways.mt5 import DealAction
from trading_sessions.models import Trade, TradingSession

from .client import Tally

EXAMPLES = 5
GRANTED = (
    Bonus.Status.ACTIVE,
    Bonus.Status.CONVERTED,
    Bonus.Status.CANCELLED,
    Bonus.Status.EXPIRED,
)
OPEN_INTENTS = (CreditIntent.Status.PENDING, CreditIntent.Status.UNKNOWN)


@dataclass
class Check:
    """One invariant: held or not, its counts, and examples of what broke it."""

    name: str
    meaning: str
    counts: dict[str, object] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    problem_count: int = 0

    @property
    def held(self) -> bool:
        return self.problem_count == 0

    def problem(self, text: str) -> None:
        self.problem_count += 1
        if len(self.problems) < EXAMPLES:
            self.problems.append(text)


@dataclass
class Scope:
    """Which rows are the soak's."""

    since: datetime
    campaign_ids: list[int] = field(default_factory=list)
    logins: list[int] = field(default_factory=list)
    deposit_comment: str = "soak deposit"
    min_deposit: Decimal = Decimal("0.01")
    session_ids: list[int] = field(default_factory=list)
    broker_emails: list[str] = field(default_factory=list)
    press_pass_prefix: str = ""


@dataclass
class ClientView:
    """What the soak's client saw, for the checks that compare it with the database."""

    handed_logins: Counter = field(default_factory=Counter)  # login -> times handed out
    reveals: dict[str, Counter] = field(default_factory=dict)  # token -> status -> times


# --- Deposits -----------------------------------------------------------------------------


def check_deposits(scope: Scope) -> Check:
    """Every qualifying deposit deal has exactly one granted bonus, whose credit the server
    received exactly once; no bonus was granted for a deal that does not qualify."""
    check = Check(
        "deposits granted once",
        "Every deposit deal of at least the campaign's minimum has exactly one bonus, granted "
        "(not pending, not refused), and the server holds exactly one credit deal for it; no "
        "bonus exists for a deal that does not qualify.",
    )
    deals = SimulatedMT5Deal.objects.filter(
        account_id__in=scope.logins,
        action=DealAction.BALANCE,
        comment=scope.deposit_comment,
        time__gte=scope.since,
    )
    qualifying = {
        (login, ticket): amount
        for login, ticket, amount in deals.values_list("account_id", "ticket", "profit")
        if amount >= scope.min_deposit
    }
    small = deals.filter(profit__gt=0, profit__lt=scope.min_deposit).count()
    bonuses = list(
        Bonus.objects.filter(campaign_id__in=scope.campaign_ids, login__in=scope.logins).order_by(
            "pk"
        )
    )
    by_deal: dict[tuple[int, int | None], list[Bonus]] = defaultdict(list)
    for bonus in bonuses:
        by_deal[(bonus.login, bonus.deposit_deal_id)].append(bonus)
    for (login, ticket), amount in qualifying.items():
        found = by_deal.get((login, ticket), [])
        if not found:
            check.problem(f"deposit deal {ticket} ({amount}) on {login}: no bonus (lost)")
        elif len(found) > 1:
            ids = ", ".join(str(b.pk) for b in found)
            check.problem(f"deposit deal {ticket} on {login}: {len(found)} bonuses ({ids})")
        elif found[0].status not in GRANTED:
            check.problem(
                f"deposit deal {ticket} on {login}: bonus {found[0].pk} {found[0].status}"
            )
    for (login, deal_id), found in by_deal.items():
        if (login, deal_id) not in qualifying:
            check.problem(
                f"bonus {found[0].pk} on {login} for deal {deal_id}, which does not qualify"
            )
    posted = _credit_deals_per_bonus(bonuses, scope.logins)
    for bonus in bonuses:
        times = posted.get(bonus.pk, 0)
        if bonus.status in GRANTED and times != 1:
            check.problem(f"bonus {bonus.pk} on {bonus.login}: its credit was posted {times} times")
        elif bonus.status not in GRANTED and times:
            check.problem(f"bonus {bonus.pk} is {bonus.status} but its credit was posted")
    check.counts = {
        "qualifying deposit deals": len(qualifying),
        "deposits under the minimum (no bonus due)": small,
        "bonuses granted": sum(1 for b in bonuses if b.status in GRANTED),
        "credit deals posted for them": sum(posted.values()),
        "bonus credit granted": sum((b.amount for b in bonuses if b.status in GRANTED), Decimal(0)),
    }
    return check


def _credit_deals_per_bonus(bonuses: list[Bonus], logins: list[int]) -> dict[int, int]:
    """How many credit deals on the server carry each bonus's grant (its op id as comment)."""
    grant_of = dict(
        CreditIntent.objects.filter(
            bonus__in=bonuses, kind=CreditIntent.Kind.CREDIT_IN
        ).values_list("op_id", "bonus_id")
    )
    posted: Counter[int] = Counter()
    deals = SimulatedMT5Deal.objects.filter(
        account_id__in=logins, action=DealAction.CREDIT, comment__in=list(grant_of)
    )
    for comment in deals.values_list("comment", flat=True):
        posted[grant_of[comment]] += 1
    return dict(posted)


# --- The credit ledger --------------------------------------------------------------------


def check_ledger(scope: Scope, *, attempts: int = 5) -> Check:
    """The ledger's credit per account equals the server's, and no write is left open."""
    check = Check(
        "credit ledger reconciles",
        "For every soak account the credit the ledger says was posted (credit-ins minus "
        "credit-outs, confirmed) equals the credit on the MT5 server (the reconcile service "
        "reports no drift) and the credit its live bonuses say they hold; no MT5 write is "
        "still pending or of unknown outcome.",
    )
    drifts = None
    for _ in range(attempts):  # the server may still be failing some calls on purpose
        try:
            drifts = credit_reconcile(logins=scope.logins)
            break
        except TransientGatewayError:
            continue
    if drifts is None:
        check.problem("the MT5 server did not answer the reconciliation")
        drifts = []
    for drift in drifts:
        check.problem(
            f"{drift.login}: ledger {drift.ledger_credit}, server {drift.server_credit} "
            f"(drift {drift.drift:+})"
        )
    intents = CreditIntent.objects.filter(login__in=scope.logins)
    _check_bonuses_hold_the_ledger(check, intents, scope.logins)
    still_open = intents.filter(status__in=OPEN_INTENTS)
    for intent in still_open[:EXAMPLES]:
        check.problem(f"intent {intent.op_id} ({intent.kind} on {intent.login}) {intent.status}")
    check.problem_count += max(0, still_open.count() - EXAMPLES)
    by_status = Counter(dict(intents.values_list("status").annotate(n=Count("id")).order_by()))
    by_kind = Counter(dict(intents.values_list("kind").annotate(n=Count("id")).order_by()))
    ledger = intents.filter(status=CreditIntent.Status.DONE)
    credit_in = ledger.filter(kind=CreditIntent.Kind.CREDIT_IN).aggregate(s=Sum("amount"))["s"]
    credit_out = ledger.filter(kind=CreditIntent.Kind.CREDIT_OUT).aggregate(s=Sum("amount"))["s"]
    check.counts = {
        "accounts reconciled": len(scope.logins),
        "accounts with drift": len(drifts),
        "MT5 writes (intents)": sum(by_status.values()),
        "of which credit-in / credit-out": (
            f"{by_kind[CreditIntent.Kind.CREDIT_IN]} / {by_kind[CreditIntent.Kind.CREDIT_OUT]}"
        ),
        "done / failed / still open": (
            f"{by_status['done']} / {by_status['failed']} / "
            f"{by_status['pending'] + by_status['unknown']}"
        ),
        "writes whose outcome was looked up after a fault (attempts > 1)": intents.filter(
            attempts__gt=1
        ).count(),
        "credit posted - removed": f"{credit_in or 0} - {credit_out or 0}",
    }
    return check


def _check_bonuses_hold_the_ledger(check: Check, intents, logins: list[int]) -> None:
    ledger: dict[int, Decimal] = defaultdict(Decimal)
    done = intents.filter(
        status=CreditIntent.Status.DONE,
        kind__in=[CreditIntent.Kind.CREDIT_IN, CreditIntent.Kind.CREDIT_OUT],
    )
    for login, kind, total in (
        done.values_list("login", "kind").annotate(total=Sum("amount")).order_by()
    ):
        ledger[login] += total if kind == CreditIntent.Kind.CREDIT_IN else -total
    held = dict(
        Bonus.objects.filter(login__in=logins, status=Bonus.Status.ACTIVE)
        .values_list("login")
        .annotate(total=Sum("credit_remaining"))
        .order_by()
    )
    for login in sorted(set(ledger) | set(held)):
        if held.get(login, Decimal(0)) != ledger.get(login, Decimal(0)):
            check.problem(
                f"{login}: live bonuses hold {held.get(login, 0)}, the ledger {ledger[login]}"
            )


# --- The demo pool ------------------------------------------------------------------------


def check_demo_accounts(scope: Scope, view: ClientView | None = None) -> Check:
    """No demo account was ever handed to two press passes, nor shown to two callers."""
    check = Check(
        "no demo account assigned twice",
        "No demo account belongs to more than one press pass, and no login was handed out in "
        "two answers (activations and queued requests that completed).",
    )
    passes = PressPass.objects.filter(activated_at__gte=scope.since)
    if scope.press_pass_prefix:
        passes = passes.filter(user_id__startswith=scope.press_pass_prefix)
    accounts = passes.values_list("account_id", flat=True)
    shared = (
        PressPass.objects.filter(account_id__in=accounts)
        .values("account_id", "account__login")
        .annotate(n=Count("id"))
        .filter(n__gt=1)
        .order_by("account_id")
    )
    for row in shared:
        check.problem(f"demo account {row['account__login']} has {row['n']} press passes")
    handed = view.handed_logins if view else Counter()
    for login, times in handed.items():
        if times > 1:
            check.problem(f"login {login} was handed out {times} times")
    check.counts = {
        "press passes": passes.count(),
        "of which waited in the queue": passes.filter(was_queued=True).count(),
        "logins handed to the client": sum(handed.values()),
    }
    return check


# --- One-time links -----------------------------------------------------------------------


def check_reveals(scope: Scope, view: ClientView | None = None) -> Check:
    """No one-time link was revealed twice: one revealed attempt at most per delivery, and at
    most one 200 per token for the client."""
    check = Check(
        "no link revealed twice",
        "No delivery has more than one successful reveal in its attempt log, every revealed "
        "delivery has exactly one, and no token gave the client its payload twice (second "
        "tries, some of them at the same moment, were refused).",
    )
    deliveries = Delivery.objects.filter(created_at__gte=scope.since)
    revealed = (
        DeliveryAttempt.objects.filter(
            delivery__in=deliveries, outcome=DeliveryAttempt.Outcome.REVEALED
        )
        .values("delivery_id")
        .annotate(n=Count("id"))
        .order_by()
    )
    revealed_once = 0
    for row in revealed:
        if row["n"] > 1:
            check.problem(f"delivery {row['delivery_id']} was revealed {row['n']} times")
        else:
            revealed_once += 1
    marked = deliveries.filter(status=Delivery.Status.REVEALED).count()
    if marked != len(revealed):
        check.problem(f"{marked} deliveries marked revealed, {len(revealed)} with a reveal logged")
    reveals = view.reveals if view else {}
    for times in reveals.values():
        if times.get(200, 0) > 1:
            check.problem(f"a token gave its payload {times[200]} times")
    by_outcome = Counter(
        dict(
            DeliveryAttempt.objects.filter(delivery__in=deliveries)
            .values_list("outcome")
            .annotate(n=Count("id"))
            .order_by()
        )
    )
    by_status = Counter(dict(deliveries.values_list("status").annotate(n=Count("id")).order_by()))
    check.counts = {
        "deliveries": sum(by_status.values()),
        "by status": ", ".join(f"{k} {v}" for k, v in sorted(by_status.items())),
        "reveals logged": by_outcome[DeliveryAttempt.Outcome.REVEALED],
        "refused as used / superseded / expired": (
            f"{by_outcome[DeliveryAttempt.Outcome.REFUSED_USED]} / "
            f"{by_outcome[DeliveryAttempt.Outcome.REFUSED_SUPERSEDED]} / "
            f"{by_outcome[DeliveryAttempt.Outcome.REFUSED_EXPIRED]}"
        ),
        "tokens the client tried / revealed": (
            f"{len(reveals)} / {sum(1 for t in reveals.values() if t.get(200))}"
        ),
    }
    return check


# --- Trades -------------------------------------------------------------------------------


def check_trades(scope: Scope, *, now: datetime | None = None) -> Check:
    """Every trade was settled once: none left open past its expiry and the grace, the broker
    settled each once (its balance says so), and each session counted each trade once."""
    check = Check(
        "every trade settled once",
        "No trade is left pending or open past its expiry plus the grace; every settled trade "
        "matches the broker's trade (same outcome and profit, settled there); each broker trade "
        "belongs to exactly one of ours; each broker account's balance is its start minus "
        "stakes plus returns (a trade settled twice would show); each session counted each of "
        "its trades once.",
    )
    now = now or timezone.now()
    grace = timedelta(seconds=settings.TRADING_SETTLE_GRACE_SECONDS)
    give_up = timedelta(seconds=settings.TRADING_OPEN_GIVE_UP_SECONDS)
    trades = Trade.objects.filter(session_id__in=scope.session_ids)
    overdue = trades.filter(
        Q(result=Trade.Result.OPEN, expires_at__lt=now - grace)
        | Q(result=Trade.Result.PENDING, created_at__lt=now - give_up - grace)
    )
    for trade in overdue.order_by("pk")[:EXAMPLES]:
        check.problem(f"trade {trade.pk} still {trade.result} (expires {trade.expires_at})")
    check.problem_count += max(0, overdue.count() - EXAMPLES)
    broker = {
        t.client_order_id: t
        for t in SimulatedBrokerTrade.objects.filter(
            account__email__in=scope.broker_emails
        ).select_related("account")
    }
    ours = {str(t.client_order_id): t for t in trades}
    for order_id, mine in ours.items():
        theirs = broker.get(order_id)
        if mine.result in Trade.SETTLED:
            if theirs is None or theirs.settled_at is None:
                check.problem(f"trade {mine.pk} is {mine.result}, the broker never settled it")
            elif theirs.outcome != mine.result or mine.profit != trade_profit(
                theirs.outcome, theirs.amount, theirs.payout
            ):
                check.problem(
                    f"trade {mine.pk}: ours {mine.result} {mine.profit}, broker {theirs.outcome}"
                )
        elif mine.result == Trade.Result.FAILED and theirs is not None:
            check.problem(f"trade {mine.pk} failed here but is open at the broker")
    for order_id, theirs in broker.items():
        if order_id not in ours:
            check.problem(f"broker trade {theirs.pk} has no trade here")
        elif theirs.settled_at is None and theirs.expires_at < now - grace:
            check.problem(f"broker trade {theirs.pk} expired and never settled")
    _check_broker_balances(check, scope)
    _check_session_counts(check, scope)
    by_result = Counter(dict(trades.values_list("result").annotate(n=Count("id")).order_by()))
    check.counts = {
        "trades": sum(by_result.values()),
        "win / loss / draw": f"{by_result['win']} / {by_result['loss']} / {by_result['draw']}",
        "failed (the broker refused or never answered)": by_result["failed"],
        "still pending or open": by_result["pending"] + by_result["open"],
        "opened after a broker fault (attempts > 1)": trades.filter(attempts__gt=1).count(),
        "broker trades settled": sum(1 for t in broker.values() if t.settled_at is not None),
    }
    return check


def _check_broker_balances(check: Check, scope: Scope) -> None:
    for account in SimulatedBrokerAccount.objects.filter(email__in=scope.broker_emails):
        start = STARTING_BALANCE.get(account.account_type, Decimal(0))
        expected = start
        for trade in account.trades.all():
            expected -= trade.amount
            if trade.settled_at is not None:
                expected += trade.amount + trade_profit(trade.outcome, trade.amount, trade.payout)
        if account.balance != expected:
            check.problem(f"broker account {account.email}: {account.balance}, expected {expected}")


def _check_session_counts(check: Check, scope: Scope) -> None:
    for session in TradingSession.objects.filter(pk__in=scope.session_ids):
        run = Trade.objects.filter(
            session=session, result__in=Trade.SETTLED, created_at__gte=session.started_at
        )
        settled = run.aggregate(n=Count("id"), profit=Sum("profit"))
        profit = settled["profit"] or Decimal("0.00")
        if settled["n"] != session.total_trades or profit != session.net_profit:
            check.problem(
                f"session {session.pk}: counted {session.total_trades} trades, "
                f"{session.net_profit}; its settled trades: {settled['n']}, {profit}"
            )


# --- What the client saw -----------------------------------------------------------------


def check_http(tally: Tally) -> Check:
    """No answer was a 5xx, not even a 503 for an outside server's fault (the product answers
    those with a retry or a queue), and every request was answered within the timeout."""
    check = Check(
        "no 5xx",
        "Every request got an answer within the client's timeout, and none was a 5xx: not "
        "even a 503 for an outside server's fault, which the product absorbs (retries, "
        "queued work) rather than hands to the client.",
    )
    for error in tally.server_errors:
        check.problem(f"{error.status} on {error.label}: {error.code or error.body[:120]}")
    for label, times in tally.unanswered.items():
        check.problem(f"{times} request(s) unanswered: {label}")
    classes = tally.by_status_class()
    check.counts = {
        "requests": tally.requests,
        "2xx / 3xx / 4xx / 5xx": (
            f"{classes['2xx']} / {classes['3xx']} / {classes['4xx']} / {classes['5xx']}"
        ),
        "unanswered": classes["no answer"],
    }
    return check


# --- All of them --------------------------------------------------------------------------


def checks_run(scope: Scope, view: ClientView | None = None) -> list[Check]:
    """Every database invariant, in the report's order."""
    return [
        check_deposits(scope),
        check_ledger(scope),
        check_demo_accounts(scope, view),
        check_reveals(scope, view),
        check_trades(scope),
    ]
