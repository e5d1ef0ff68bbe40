"""The Web API stand-in's wire format: retcodes, parameter parsing, group masks, and the JSON
shapes of User, Account, Deal, Position and Group (spec sections 1.7, 3, 6; every scalar out
is a string).

Times on the wire are trade-server time: UTC shifted by the server's `offset` seconds.
"""

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from core.money import CENT
from gateways.mt5.types import DealAction, DealEntry, PositionSide

RETCODE_TEXT = {
    0: "Done",
    1: "ok; no data",
    2: "Common error",
    3: "Invalid parameters",
    4: "Invalid data",
    8: "Not enough permissions",
    9: "Operation timeout",
    10: "No connection",
    12: "Too frequent requests",
    13: "Not found",
    1001: "Invalid account",
    3002: "Logins range exhausted",
    3004: "Account already exists",
    3006: "Invalid account password",
    4005: "Money limit reached",
    10006: "Request rejected",
    10009: "Request executed",
    10019: "Not enough money",
    10024: "Too many trade requests",
}

DEAL_ACTION_CODE = {
    DealAction.BUY: 0,
    DealAction.SELL: 1,
    DealAction.BALANCE: 2,
    DealAction.CREDIT: 3,
    DealAction.CHARGE: 4,
    DealAction.CORRECTION: 5,
    DealAction.COMMISSION: 7,
    DealAction.SO_COMPENSATION: 19,
}
# Money operations are ENTRY_IN (MetaQuotes' deposit report filters on it).
DEAL_ENTRY_CODE = {DealEntry.IN: 0, DealEntry.OUT: 1, DealEntry.INOUT: 2, DealEntry.NONE: 0}
POSITION_ACTION_CODE = {PositionSide.BUY: 0, PositionSide.SELL: 1}
# USER_RIGHT_ENABLED is bit 0; the rest is a usual client default (password change, trading...).
RIGHTS_ENABLED = 2531
# 1 unit of Volume is 1/10000 lot, of VolumeExt 1e-8 lot.
VOLUME_UNITS = Decimal(10000)
VOLUME_EXT_UNITS = Decimal(100_000_000)
PRICE_DIGITS = 5
# A User's ApiData always has 16 cells; the simulated server keeps none, so all are empty.
API_DATA = [
    {"AppID": "0", "ID": "0", "ValueInt": "0", "ValueUInt": "0", "ValueDouble": "0"}
    for _ in range(16)
]
CURRENCY_DIGITS = 2


class RetcodeError(Exception):
    """An answer with a non-zero retcode (HTTP 200)."""

    def __init__(self, code: int, detail: str = ""):
        self.code = code
        super().__init__(detail or RETCODE_TEXT.get(code, "Common error"))


def retcode(code: int) -> str:
    """The wire form `"<int> <text>"`."""
    return f"{code} {RETCODE_TEXT.get(code, 'Common error')}"


# --- Parameters in -----------------------------------------------------------------------------


def unescape(value: str) -> str:
    r"""Undo the Web API's escaping: `\=`, `\|`, `\\` and `\<LF>` are the character; any other
    backslash is literal (so `demo\forex` and `demo\\forex` both mean `demo\forex`)."""
    if "\\" not in value:
        return value
    out, i = [], 0
    while i < len(value):
        char = value[i]
        if char == "\\" and i + 1 < len(value) and value[i + 1] in ("=", "|", "\\", "\n"):
            out.append(value[i + 1])
            i += 2
            continue
        out.append(char)
        i += 1
    return "".join(out)


def as_int(value: Any, *, name: str = "") -> int:
    try:
        if isinstance(value, bool):
            raise ValueError
        return int(str(value).strip())
    except (TypeError, ValueError):
        raise RetcodeError(3, f"{name or 'value'} is not an integer") from None


def as_decimal(value: Any, *, name: str = "") -> Decimal:
    if isinstance(value, bool) or value is None:
        raise RetcodeError(3, f"{name or 'value'} is not a number")
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        raise RetcodeError(3, f"{name or 'value'} is not a number") from None
    if not number.is_finite():
        raise RetcodeError(3, f"{name or 'value'} is not a number")
    return number


def as_list(value: Any) -> list[str]:
    """A comma list from the query, or a JSON array from a body; blanks dropped."""
    if value is None:
        return []
    if isinstance(value, list | tuple):
        items = [str(item) for item in value]
    else:
        items = str(value).split(",")
    return [item.strip() for item in items if str(item).strip()]


def as_logins(value: Any) -> list[int]:
    return [as_int(item, name="login") for item in as_list(value)]


def mask_matcher(masks: Iterable[str]):
    """A predicate for group masks: `*` matches any run, `!mask` excludes; case-insensitive.
    With only exclusions, everything else matches."""
    include: list[str] = []
    exclude: list[str] = []
    for mask in masks:
        (exclude if mask.startswith("!") else include).append(mask.lstrip("!").lower())

    def matches(group: str) -> bool:
        name = group.lower()
        if any(_glob(mask, name) for mask in exclude):
            return False
        return not include or any(_glob(mask, name) for mask in include)

    return matches


def _glob(mask: str, name: str) -> bool:
    parts = mask.split("*")
    if len(parts) == 1:
        return mask == name
    if not name.startswith(parts[0]) or not name.endswith(parts[-1]):
        return False
    position, end = len(parts[0]), len(name) - len(parts[-1])
    for part in parts[1:-1]:
        found = name.find(part, position, end)
        if found < 0:
            return False
        position = found + len(part)
    return position <= end


# --- Shapes out --------------------------------------------------------------------------------


class Rows(list):
    """A list of rows the shape builders below made: already all strings, sent as is."""


def stringify(value: Any) -> Any:
    """Every scalar as a string, recursively; money and prices keep their digits."""
    kind = type(value)
    if kind is str or kind is Rows or kind is RawRows:
        return value
    if kind is dict:
        return {str(key): stringify(item) for key, item in value.items()}
    if kind is list:
        return [stringify(item) for item in value]
    if isinstance(value, Mapping):
        return {str(key): stringify(item) for key, item in value.items()}
    if isinstance(value, tuple):
        return [stringify(item) for item in value]
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    return str(value)


def money(value: Decimal | int) -> str:
    if type(value) is not Decimal:
        value = Decimal(value)
    return str(value.quantize(CENT))


def price(value: Decimal | int) -> str:
    return f"{Decimal(value):.{PRICE_DIGITS}f}"


def server_seconds(moment: datetime, offset: int) -> int:
    return int(moment.timestamp()) + offset


def server_msc(moment: datetime, offset: int) -> int:
    return int(moment.timestamp() * 1000) + offset * 1000


def from_server_seconds(seconds: int, offset: int) -> datetime:
    return datetime.fromtimestamp(seconds - offset, tz=UTC)


def server_time_text(seconds: int) -> str:
    """`"1572518788 2019.10.31 10:46:28"`: the seconds and the same instant written out."""
    return f"{seconds} {datetime.fromtimestamp(seconds, tz=UTC):%Y.%m.%d %H:%M:%S}"


def user_json(row, *, offset: int) -> dict[str, str]:
    """User (spec 6.1) from a SimulatedMT5Account; what the simulated server does not keep
    comes back empty or zero."""
    registered = server_seconds(row.registered_at, offset)
    return {
        "Login": str(row.login),
        "Group": row.group,
        "CertSerialNumber": "0",
        "Rights": str(RIGHTS_ENABLED if row.enabled else RIGHTS_ENABLED & ~1),
        "Registration": str(registered),
        "LastAccess": str(registered),
        "LastIP": "",
        "LastPassChange": str(registered),
        "Name": row.name,
        "FirstName": "",
        "LastName": "",
        "MiddleName": "",
        "Company": "",
        "Account": "",
        "Country": row.country,
        "Language": "0",
        "City": "",
        "State": "",
        "ZIPCode": "",
        "Address": "",
        "Phone": "",
        "Email": "",
        "ID": "",
        "Status": "",
        "Comment": row.comment,
        "Color": "4278190080",
        "PhonePassword": "",
        "Leverage": str(row.leverage),
        "Agent": "0",
        "Balance": money(row.balance),
        "Credit": money(row.credit),
        "InterestRate": "0.00",
        "CommissionDaily": "0.00",
        "CommissionMonthly": "0.00",
        "CommissionAgentDaily": "0.00",
        "CommissionAgentMonthly": "0.00",
        "BalancePrevDay": money(row.balance),
        "BalancePrevMonth": money(row.balance),
        "EquityPrevDay": money(row.balance + row.credit),
        "EquityPrevMonth": money(row.balance + row.credit),
        "MQID": "0",
        "TradeAccounts": "",
        "ApiData": API_DATA,
        "LeadSource": row.lead_source,
        "LeadCampaign": "",
        "LimitOrders": "0",
        "LimitPositions": "0",
        "Currency": row.currency,
    }


# Account trade state (spec 6.2): a field is a constant or the name of a computed value.
_ACCOUNT_FIELDS = [
    ("Login", "login"),
    ("CurrencyDigits", "=2"),
    ("Balance", "balance"),
    ("Credit", "credit"),
    ("Margin", "=0.00"),
    ("MarginFree", "equity"),
    ("MarginLevel", "=0.00"),
    ("MarginLeverage", "leverage"),
    ("MarginInitial", "=0.00"),
    ("MarginMaintenance", "=0.00"),
    ("Profit", "floating"),
    ("Storage", "=0.00"),
    ("Commission", "=0.00"),
    ("Floating", "floating"),
    ("Equity", "equity"),
    ("SOActivation", "=0"),
    ("SOTime", "=0"),
    ("SOLevel", "=0.00"),
    ("SOEquity", "=0.00"),
    ("SOMargin", "=0.00"),
    ("BlockedCommission", "=0.00"),
    ("BlockedProfit", "=0.00"),
    ("Assets", "=0.00"),
    ("Liabilities", "=0.00"),
]
# The same row as JSON text: a sweep reads 100,000 of them, and filling a template costs a
# fraction of building a dict and encoding it (every value is digits, nothing to escape).
_ACCOUNT_TEMPLATE = (
    "{"
    + ",".join(
        f'"{name}":"{source[1:]}"' if source.startswith("=") else f'"{name}":"%({source})s"'
        for name, source in _ACCOUNT_FIELDS
    )
    + "}"
)


class RawRows(list):
    """Rows already encoded as JSON text; the server splices them into the answer."""


def _account_values(login, balance, credit, floating, leverage) -> dict[str, str]:
    """The simulated server keeps no margin: Margin is 0, so MarginFree is the equity and
    MarginLevel 0 (MT5 shows 0 with no margin in use)."""
    return {
        "login": str(login),
        "balance": money(balance),
        "credit": money(credit),
        "floating": money(floating),
        "equity": money(balance + credit + floating),
        "leverage": str(leverage),
    }


def account_json(login: int, balance: Decimal, credit: Decimal, floating: Decimal, leverage: int):
    """Account trade state (spec 6.2) as a dict."""
    values = _account_values(login, balance, credit, floating, leverage)
    return {
        name: source[1:] if source.startswith("=") else values[source]
        for name, source in _ACCOUNT_FIELDS
    }


def account_json_text(login, balance, credit, floating, leverage) -> str:
    """The same Account as JSON text."""
    return _ACCOUNT_TEMPLATE % _account_values(login, balance, credit, floating, leverage)


def _volume(lots: Decimal) -> tuple[str, str]:
    return str(int(lots * VOLUME_UNITS)), str(int(lots * VOLUME_EXT_UNITS))


def deal_json(row, *, offset: int) -> dict[str, str]:
    """Deal (spec 6.3). Money operations: amount in Profit, Symbol empty, Volume 0, Entry 0."""
    volume, volume_ext = _volume(row.volume)
    return {
        "Deal": str(row.ticket),
        "ExternalID": "",
        "Login": str(row.account_id),
        "Dealer": "0",
        "Order": "0",
        "Action": str(DEAL_ACTION_CODE.get(row.action, 2)),
        "Entry": str(DEAL_ENTRY_CODE.get(row.entry, 0)),
        "Digits": str(PRICE_DIGITS),
        "DigitsCurrency": str(CURRENCY_DIGITS),
        "ContractSize": "100000.00",
        "Time": str(server_seconds(row.time, offset)),
        "TimeMsc": str(server_msc(row.time, offset)),
        "Symbol": row.symbol,
        "Price": price(row.price),
        "PriceSL": price(0),
        "PriceTP": price(0),
        "Volume": volume,
        "VolumeExt": volume_ext,
        "Profit": money(row.profit),
        "Value": "0.00",
        "Storage": "0.00",
        "Commission": "0.00",
        "Fee": "0.00",
        "RateProfit": "1.00000000",
        "RateMargin": "1.00000000",
        "ExpertID": "0",
        "PositionID": str(row.position_id),
        "Comment": row.comment,
        "ProfitRaw": money(row.profit),
        "PricePosition": price(row.price),
        "VolumeClosed": volume if row.entry == DealEntry.OUT else "0",
        "TickValue": "0.00000",
        "TickSize": "0.00000",
        "Flags": "0",
        "Reason": "0",
        "Gateway": "",
        "PriceGateway": price(0),
        "MarketBid": price(0),
        "MarketAsk": price(0),
        "MarketLast": price(0),
        "ModificationFlags": "0",
    }


def position_json(row, *, offset: int) -> dict[str, str]:
    """Position (spec 6.4). The simulated market keeps no current price: PriceCurrent is the
    open price and Profit the floating profit the simulation set."""
    volume, volume_ext = _volume(row.volume)
    opened = server_seconds(row.opened_at, offset)
    opened_msc = server_msc(row.opened_at, offset)
    return {
        "Login": str(row.account_id),
        "Symbol": row.symbol,
        "Action": str(POSITION_ACTION_CODE[row.side]),
        "Digits": str(PRICE_DIGITS),
        "DigitsCurrency": str(CURRENCY_DIGITS),
        "ContractSize": "100000.00",
        "Position": str(row.ticket),
        "ExternalID": "",
        "TimeCreate": str(opened),
        "TimeUpdate": str(opened),
        "TimeCreateMsc": str(opened_msc),
        "TimeUpdateMsc": str(opened_msc),
        "PriceOpen": price(row.open_price),
        "PriceCurrent": price(row.open_price),
        "PriceSL": price(0),
        "PriceTP": price(0),
        "Volume": volume,
        "VolumeExt": volume_ext,
        "Profit": money(row.profit),
        "Storage": "0.00",
        "RateProfit": "1.00000000",
        "RateMargin": "1.00000000",
        "ExpertID": "0",
        "ExpertPositionID": "0",
        "Comment": "",
        "Dealer": "0",
        "ActivationMode": "0",
        "ActivationTime": "0",
        "ActivationPrice": price(0),
        "ActivationFlags": "0",
        "ModificationFlags": "0",
        "Reason": "0",
    }


def group_json(name: str, *, server: str) -> dict[str, str]:
    """IMTConGroup, the few fields a back office reads."""
    return {
        "Group": name,
        "Server": server,
        "PermissionsFlags": "0",
        "AuthMode": "0",
        "AuthPasswordMin": "8",
        "Company": "",
        "Currency": "USD",
        "CurrencyDigits": str(CURRENCY_DIGITS),
        "MarginCall": "100.00",
        "MarginStopOut": "50.00",
        "DemoLeverage": "100",
        "DemoDeposit": "0.00",
    }
