"""The simulated MT5 server: part of the product (what `make run` uses), state in the database.

Every Protocol call first applies the admin's latency and error-rate knobs. Money moves with
F() updates under the account's row lock, in one transaction with the deal that records it.
The helpers below the Protocol methods (`add_account`, `open_position`, ...) play the market
and the clients; they skip the knobs because no product code path goes through them.
"""

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from decimal import Decimal
from typing import cast

from django.contrib.auth.hashers import check_password, make_password
from django.db import IntegrityError, transaction
from django.db.models import DecimalField, F, Max, Q, Sum, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from gateways.errors import PermanentGatewayError
from gateways.models import SimulatedMT5Account, SimulatedMT5Deal, SimulatedMT5Position
from gateways.simulation import apply_knobs

from .demo_accounts import DEMO_ACCOUNTS
from .types import (
    CENT,
    AccountState,
    DealAction,
    DealEntry,
    MT5Account,
    MT5Deal,
    MT5Position,
    PositionSide,
    check_comment,
    to_lots,
    to_money,
)

GATEWAY = "mt5"
LIVE, DEMO = SimulatedMT5Account.Server.LIVE, SimulatedMT5Account.Server.DEMO
# Logins the server picks start here, clear of the demo range 10001-10010.
FIRST_CREATED_LOGIN = 20001
# Each simulated server hands out its own range, so a login is unique across both.
FIRST_LOGIN: dict[str, int] = {LIVE: FIRST_CREATED_LOGIN, DEMO: 50_000_001}
MIN_PASSWORD_LENGTH = 8
# Keeps each OR-of-cursors query far below SQLite's expression depth limit.
CURSOR_QUERY_CHUNK = 200


def _not_found(login: int) -> PermanentGatewayError:
    return PermanentGatewayError(
        f"MT5 account {login} not found", gateway=GATEWAY, code="account_not_found"
    )


def _position_not_found(ticket: int) -> PermanentGatewayError:
    return PermanentGatewayError(
        f"position {ticket} not found", gateway=GATEWAY, code="position_not_found"
    )


def _check_leverage(leverage: int) -> None:
    if leverage < 1:
        raise PermanentGatewayError(
            "leverage must be >= 1", gateway=GATEWAY, code="invalid_leverage"
        )


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise PermanentGatewayError(
            f"password shorter than {MIN_PASSWORD_LENGTH} characters",
            gateway=GATEWAY,
            code="invalid_password",
        )


def _with_floating(accounts):
    zero = Value(Decimal(0), output_field=DecimalField(max_digits=18, decimal_places=2))
    return accounts.annotate(floating=Coalesce(Sum("positions__profit"), zero))


def next_login(server: str, create) -> int:
    """Create an account under the next free login of `server`'s range: `create(login)`
    inserts it. Two creators may pick the same login: the primary key refuses one, who tries
    the next."""
    first = FIRST_LOGIN.get(server, FIRST_CREATED_LOGIN)
    mine = SimulatedMT5Account.objects.filter(server=server, login__gte=first)
    candidate = 0
    for _ in range(20):
        top = mine.aggregate(top=Max("login"))["top"] or 0
        candidate = max(top + 1, first, candidate + 1)
        try:
            with transaction.atomic():
                create(candidate)
        except IntegrityError:
            continue
        return candidate
    raise PermanentGatewayError("no free login", gateway=GATEWAY, code="login_unavailable")


def _account(row: SimulatedMT5Account) -> MT5Account:
    return MT5Account(
        login=row.login,
        name=row.name,
        group=row.group,
        country=row.country,
        lead_source=row.lead_source,
        balance=row.balance,
        credit=row.credit,
        equity=row.balance + row.credit + row.floating,  # type: ignore[attr-defined]  # annotated
        leverage=row.leverage,
        currency=row.currency,
        enabled=row.enabled,
        registered_at=row.registered_at,
    )


def _deal(row: SimulatedMT5Deal) -> MT5Deal:
    return MT5Deal(
        ticket=row.ticket,
        login=row.account_id,
        time=row.time,
        action=cast(DealAction, row.action),  # the columns' choices
        entry=cast(DealEntry, row.entry),
        symbol=row.symbol,
        volume=row.volume,
        price=row.price,
        profit=row.profit,
        comment=row.comment,
        position_id=row.position_id,
    )


def _position(row: SimulatedMT5Position) -> MT5Position:
    return MT5Position(
        ticket=row.ticket,
        login=row.account_id,
        symbol=row.symbol,
        side=cast(PositionSide, row.side),  # the column's choices
        volume=row.volume,
        open_price=row.open_price,
        profit=row.profit,
    )


class SimulatedMT5Gateway:
    """An MT5 manager whose server is this database (see `gateways.models.mt5`): the live
    server's accounts, or with `server="demo"` the demo server's; never the other's."""

    server: str = LIVE

    def __init__(self, *, server: str | None = None) -> None:
        if server is not None:
            self.server = SimulatedMT5Account.Server(server)

    def _accounts(self):
        return SimulatedMT5Account.objects.filter(server=self.server)

    def _deals(self):
        return SimulatedMT5Deal.objects.filter(account__server=self.server)

    def _positions(self):
        return SimulatedMT5Position.objects.filter(account__server=self.server)

    # --- The Protocol ---------------------------------------------------------------------

    def ping(self) -> None:
        """Answer unless the error-rate knob says otherwise."""
        apply_knobs(GATEWAY)

    def get_accounts(self, logins: Iterable[int]) -> dict[int, MT5Account]:
        """Return the accounts of `logins` in one query; unknown logins are absent."""
        apply_knobs(GATEWAY)
        rows = _with_floating(self._accounts()).filter(login__in={int(login) for login in logins})
        return {row.login: _account(row) for row in rows}

    def get_states(self, logins: Iterable[int]) -> dict[int, AccountState]:
        """Return the watched numbers of `logins`: two queries, no model instances.

        The monitor asks for a batch of neighbouring logins, so the queries take their range
        and drop the strangers in Python: a 1,000-value IN list costs more to send and plan.
        """
        apply_knobs(GATEWAY)
        wanted = {int(login) for login in logins}
        if not wanted:
            return {}
        span = {"gte": min(wanted), "lte": max(wanted)}
        # Unscoped: only the floating profit of this server's rows below is read.
        positions = SimulatedMT5Position.objects.filter(
            account_id__gte=span["gte"], account_id__lte=span["lte"]
        )
        floating = dict(
            positions.values("account_id")
            .annotate(total=Sum("profit"))
            .values_list("account_id", "total")
            .order_by()
        )
        rows = self._accounts().filter(login__gte=span["gte"], login__lte=span["lte"])
        states = {}
        for login, balance, credit, leverage in rows.values_list(
            "login", "balance", "credit", "leverage"
        ).order_by():
            if login not in wanted:
                continue
            extra = floating.get(login)
            equity = balance + credit + extra if extra is not None else balance + credit
            states[login] = AccountState(balance, credit, equity.quantize(CENT), leverage)
        return states

    def list_logins(self) -> list[int]:
        """Return every login, ascending."""
        apply_knobs(GATEWAY)
        return list(self._accounts().order_by("login").values_list("login", flat=True))

    def list_groups(self) -> list[str]:
        """Return the groups the accounts are in, sorted."""
        apply_knobs(GATEWAY)
        return list(self._accounts().order_by("group").values_list("group", flat=True).distinct())

    def list_countries(self) -> list[str]:
        """Return the accounts' countries, sorted."""
        apply_knobs(GATEWAY)
        countries = self._accounts().exclude(country="").order_by("country")
        return list(countries.values_list("country", flat=True).distinct())

    def get_deals(
        self, *, cursors: Mapping[int, int], since: datetime | None = None
    ) -> list[MT5Deal]:
        """Return each login's deals after its cursor (and at or after `since`), by ticket."""
        apply_knobs(GATEWAY)
        deals: list[MT5Deal] = []
        items = list(cursors.items())
        for start in range(0, len(items), CURSOR_QUERY_CHUNK):
            chunk = items[start : start + CURSOR_QUERY_CHUNK]
            after_cursor = Q(
                *(Q(account_id=int(login), ticket__gt=int(ticket)) for login, ticket in chunk),
                _connector=Q.OR,
            )
            rows = SimulatedMT5Deal.objects.filter(after_cursor)
            if since is not None:
                rows = rows.filter(time__gte=since)
            deals.extend(_deal(row) for row in rows)
        if deals:
            # Another server's logins have no deals here; checked only when there are deals,
            # so a quiet sweep pays no join.
            mine = set(
                self._accounts()
                .filter(login__in={d.login for d in deals})
                .values_list("login", flat=True)
            )
            deals = [deal for deal in deals if deal.login in mine]
        return sorted(deals, key=lambda deal: deal.ticket)

    def get_positions(self, logins: Iterable[int]) -> list[MT5Position]:
        """Return the open positions of `logins`, by ticket."""
        apply_knobs(GATEWAY)
        rows = self._positions().filter(account_id__in={int(login) for login in logins})
        return [_position(row) for row in rows.order_by("ticket")]

    def close_positions(self, login: int, *, comment: str) -> list[int]:
        """Close every open position at its current profit; return the OUT deals' tickets."""
        apply_knobs(GATEWAY)
        check_comment(comment)
        with transaction.atomic():
            self._lock(login)
            positions = list(
                SimulatedMT5Position.objects.filter(account_id=login).order_by("ticket")
            )
            return [self._book_close(p, profit=p.profit, comment=comment) for p in positions]

    def post_balance(self, login: int, amount: Decimal, *, comment: str) -> int:
        """Deposit or withdraw; a withdrawal beyond the balance is refused."""
        apply_knobs(GATEWAY)
        return self._move_money(login, amount, comment=comment, action=DealAction.BALANCE)

    def post_credit(self, login: int, amount: Decimal, *, comment: str) -> int:
        """Add or remove credit; credit never goes below zero."""
        apply_knobs(GATEWAY)
        return self._move_money(login, amount, comment=comment, action=DealAction.CREDIT)

    def set_leverage(self, login: int, leverage: int) -> None:
        """Set 1:`leverage`."""
        apply_knobs(GATEWAY)
        _check_leverage(leverage)
        self._update(login, leverage=leverage)

    def create_account(
        self,
        *,
        name: str,
        group: str,
        country: str,
        leverage: int,
        password: str,
        lead_source: str = "",
        currency: str = "USD",
    ) -> MT5Account:
        """Create an empty account under the next free login."""
        apply_knobs(GATEWAY)
        _check_leverage(leverage)
        _check_password(password)
        login = self._insert_account(
            login=None,
            name=name,
            group=group,
            country=country,
            leverage=leverage,
            password=make_password(password),
            lead_source=lead_source,
            currency=currency,
        )
        return _account(_with_floating(self._accounts()).get(login=login))

    def change_password(self, login: int, password: str) -> None:
        """Store the new password's hash."""
        apply_knobs(GATEWAY)
        _check_password(password)
        self._update(login, password=make_password(password))

    def set_enabled(self, login: int, enabled: bool) -> None:
        """Enable or disable the account."""
        apply_knobs(GATEWAY)
        self._update(login, enabled=enabled)

    def find_deal_by_comment(self, login: int, comment: str) -> MT5Deal | None:
        """Return the latest deal of `login` with exactly this comment, or None."""
        apply_knobs(GATEWAY)
        row = self._deals().filter(account_id=login, comment=comment).order_by("-ticket")
        found = row.first()
        return _deal(found) if found else None

    # --- Simulation helpers (not on the Protocol) -----------------------------------------

    def add_account(
        self,
        *,
        login: int | None = None,
        name: str = "Test Client",
        group: str = "real\\standard",
        country: str = "United Kingdom",
        leverage: int = 100,
        balance: Decimal | int | str = 0,
        credit: Decimal | int | str = 0,
        lead_source: str = "",
        currency: str = "USD",
        registered_at: datetime | None = None,
    ) -> int:
        """Create an account with a deposit deal for its balance and a credit deal for its
        credit; return its login. Its password is unusable until `change_password`."""
        with transaction.atomic():
            login = self._insert_account(
                login=login,
                name=name,
                group=group,
                country=country,
                leverage=leverage,
                password=make_password(None),
                lead_source=lead_source,
                currency=currency,
                registered_at=registered_at or timezone.now(),
            )
            if to_money(balance):
                self._move_money(login, balance, comment="Deposit", action=DealAction.BALANCE)
            if to_money(credit):
                self._move_money(login, credit, comment="Credit", action=DealAction.CREDIT)
        return login

    def open_position(
        self,
        login: int,
        *,
        symbol: str,
        side: PositionSide | str,
        volume: Decimal | str,
        price: Decimal | str = "1.00000",
        profit: Decimal | int | str = 0,
    ) -> int:
        """Open a position (and its IN deal) as if the client traded; return its ticket."""
        side = PositionSide(side)
        with transaction.atomic():
            self._lock(login)
            position = SimulatedMT5Position.objects.create(
                account_id=login,
                symbol=symbol,
                side=side,
                volume=to_lots(volume),
                open_price=Decimal(price),
                profit=to_money(profit),
            )
            SimulatedMT5Deal.objects.create(
                account_id=login,
                action=DealAction(side.value),
                entry=DealEntry.IN,
                symbol=symbol,
                volume=position.volume,
                price=position.open_price,
                position_id=position.ticket,
            )
        return position.ticket

    def set_position_profit(self, ticket: int, profit: Decimal | int | str) -> None:
        """Move the market: set an open position's floating profit."""
        if not self._positions().filter(pk=ticket).update(profit=to_money(profit)):
            raise _position_not_found(ticket)

    def close_position(
        self, ticket: int, *, profit: Decimal | int | str | None = None, comment: str = ""
    ) -> int:
        """Close one position as the client would, at `profit` (default: its floating
        profit); the OUT deal's profit moves the balance. Return the deal ticket."""
        check_comment(comment)
        owner = self._positions().filter(pk=ticket).values_list("account_id", flat=True)
        login = owner.first()
        with transaction.atomic():
            position = None
            if login is not None:
                self._lock(login)
                position = SimulatedMT5Position.objects.filter(pk=ticket).first()
            if position is None:
                raise _position_not_found(ticket)
            final = position.profit if profit is None else to_money(profit)
            return self._book_close(position, profit=final, comment=comment)

    def set_lead_source(self, login: int, lead_source: str) -> None:
        """Set the account's Lead Source (where IB agent codes live)."""
        self._update(login, lead_source=lead_source)

    def password_matches(self, login: int, password: str) -> bool:
        """Whether `password` is the account's current password."""
        stored = self._accounts().filter(pk=login).values_list("password", flat=True)
        return check_password(password, stored.first() or "")

    # --- Internals ------------------------------------------------------------------------

    def _lock(self, login: int) -> None:
        # The account row lock serializes every money move and deal of that account.
        locked = self._accounts().select_for_update().filter(pk=login)
        if not list(locked.values_list("pk", flat=True)):
            raise _not_found(login)

    def _update(self, login: int, **fields) -> None:
        if not self._accounts().filter(pk=login).update(**fields):
            raise _not_found(login)

    def _move_money(
        self, login: int, amount: Decimal | int | str, *, comment: str, action: DealAction
    ) -> int:
        amount = to_money(amount)
        if not amount:
            raise PermanentGatewayError("amount is zero", gateway=GATEWAY, code="invalid_amount")
        check_comment(comment)
        field = "balance" if action == DealAction.BALANCE else "credit"
        with transaction.atomic():
            self._lock(login)
            # The floor is in the UPDATE itself, so no interleaving can take it below zero.
            floor = Q(**{f"{field}__gte": -amount}) if amount < 0 else Q()
            if not self._accounts().filter(floor, pk=login).update(**{field: F(field) + amount}):
                raise PermanentGatewayError(
                    f"not enough {field} on {login}", gateway=GATEWAY, code=f"insufficient_{field}"
                )
            deal = SimulatedMT5Deal.objects.create(
                account_id=login, action=action, profit=amount, comment=comment
            )
        return deal.ticket

    def _book_close(self, position: SimulatedMT5Position, *, profit: Decimal, comment: str) -> int:
        # Caller holds the account lock. Closing a buy is a sell deal and the reverse.
        closing = DealAction.SELL if position.side == PositionSide.BUY else DealAction.BUY
        deal = SimulatedMT5Deal.objects.create(
            account_id=position.account_id,
            action=closing,
            entry=DealEntry.OUT,
            symbol=position.symbol,
            volume=position.volume,
            price=position.open_price,
            profit=profit,
            comment=comment,
            position_id=position.ticket,
        )
        SimulatedMT5Account.objects.filter(pk=position.account_id).update(
            balance=F("balance") + profit
        )
        position.delete()
        return deal.ticket

    def _insert_account(self, *, login: int | None, **fields) -> int:
        fields["server"] = self.server
        if login is not None:
            SimulatedMT5Account.objects.create(login=login, **fields)
            return login
        return next_login(
            self.server,
            lambda candidate: SimulatedMT5Account.objects.create(login=candidate, **fields),
        )


def seed_demo_accounts() -> int:
    """Create whichever of the demo accounts 10001-10010 are missing, each with a deposit deal
    for its balance; return how many it created. Running it again creates nothing."""
    server = SimulatedMT5Gateway()
    created = 0
    now = timezone.now()
    for login, name, group, country, source, balance, credit, leverage, positions in DEMO_ACCOUNTS:
        if SimulatedMT5Account.objects.filter(pk=login).exists():
            continue
        try:
            with transaction.atomic():
                server.add_account(
                    login=login,
                    name=name,
                    group=group,
                    country=country,
                    lead_source=source,
                    balance=balance,
                    credit=credit,
                    leverage=leverage,
                    registered_at=now - timedelta(days=login - 10000),
                )
                for symbol, side, lots, price, profit in positions:
                    server.open_position(
                        login, symbol=symbol, side=side, volume=lots, price=price, profit=profit
                    )
        except IntegrityError:  # a concurrent seeder created it first
            continue
        created += 1
    return created
