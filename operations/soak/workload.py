"""The mix the soak drives while the simulated servers fail: one thread per kind of traffic.

- deposits and withdrawals on the soak's MT5 accounts, made on the simulated MT5 server
  itself (as clients' money arrives there), so the monitor has to find them;
- press-pass activations (integration key), and the queued ones followed until assigned;
- reveals of the one-time links they hand out: half through the API, half through the page a
  person opens (GET, then POST with its CSRF token); a quarter tried twice, some of those at
  the same moment; links sent by Telegram are read from the simulated Telegram outbox;
- license validations;
- signals to the soak channel, which every running session trades;
- reads staff and clients make (monitor, pool, session status, trades, bonuses, balances).

Each thread sleeps a jittered interval between actions (shorter with a higher `rate`). A
failure of the soak itself is counted and reported, never hidden.
"""

import logging
import queue
import random
import re
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal

from django.db import close_old_connections, connection

from gateways.errors import GatewayError, TransientGatewayError
from gateways.models import SimulatedMT5Account, SimulatedTelegramMessage
from gateways.mt5.simulated import SimulatedMT5Gateway

from .client import Answer, Api, Tally
from .invariants import ClientView
from .world import World, login

logger = logging.getLogger("operations.soak")

DEPOSIT_COMMENT = "soak deposit"
WITHDRAWAL_COMMENT = "soak withdrawal"
TOKEN_IN_LINK = re.compile(r"/d/([A-Za-z0-9_-]{20,})")
CSRF_FIELD = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')
METHODS = [("api", 55), ("qr", 10), ("email", 15), ("telegram", 20)]
ASSETS = ["EURUSD", "GBPUSD", "USDJPY", "AUDUSD"]


@dataclass
class Deal:
    login: int
    ticket: int
    amount: Decimal


@dataclass
class Observations:
    """What the workload did and saw; shared by its threads (append/Counter under a lock)."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    deals: list[Deal] = field(default_factory=list)
    view: ClientView = field(default_factory=ClientView)
    tokens: queue.Queue = field(default_factory=queue.Queue)
    queued: list[tuple[str, str]] = field(default_factory=list)  # (request id, method)
    telegram_chats: set[str] = field(default_factory=set)
    passwords: set[str] = field(default_factory=set)  # revealed demo passwords
    tokens_seen: set[str] = field(default_factory=set)  # one-time link tokens
    jwts: set[str] = field(default_factory=set)  # tokens of logins made during the run

    def handed(self, login: int) -> None:
        with self.lock:
            self.view.handed_logins[login] += 1

    def revealed(self, token: str, status: int | None) -> None:
        with self.lock:
            self.view.reveals.setdefault(token, Counter())[status] += 1

    def link(self, token: str) -> None:
        with self.lock:
            self.tokens_seen.add(token)
        self.tokens.put(token)


class Workload:
    """The threads, their shared state, and how long they run."""

    def __init__(
        self, *, world: World, base_url: str, tally: Tally, rate: float = 1.0, seed=None
    ) -> None:
        self.world = world
        self.base_url = base_url
        self.tally = tally
        self.rate = max(rate, 0.01)
        self.seen = Observations()
        self.stop = threading.Event()
        self.random = random.Random(seed)
        self._counter = 0
        self._counter_lock = threading.Lock()

    # --- Running ----------------------------------------------------------------------------

    def run(self, seconds: float, *, say=print) -> None:
        """Run every thread for `seconds`, printing a line of progress every 30 s."""
        loops: list[tuple[str, float, Callable[[Api], None]]] = [
            ("deposits", 0.5, self.deposit),
            ("withdrawals", 4.0, self.withdraw),
            ("press passes", 2.0, self.activate),
            ("queued activations", 3.0, self.follow_queue),
            ("reveals", 0.5, self.reveal_next),
            ("reveals (2)", 0.5, self.reveal_next),
            ("telegram outbox", 5.0, self.read_outbox),
            ("validations", 0.25, self.validate),
            ("signals", 6.0, self.signal),
            ("reads", 1.0, self.read),
        ]
        threads = [
            threading.Thread(target=self._loop, args=(name, every, action), name=name, daemon=True)
            for name, every, action in loops
        ]
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + seconds
        next_line = time.monotonic() + 30
        while time.monotonic() < deadline:
            time.sleep(min(1.0, max(0.0, deadline - time.monotonic())))
            if time.monotonic() >= next_line:
                next_line += 30
                say(f"  {self.progress()}")
        self.stop.set()
        for thread in threads:
            thread.join(timeout=60)
        # What is left in the queue is revealed now: every link handed out gets its try.
        api = Api(self.base_url, self.tally)
        while not self.seen.tokens.empty():
            self.reveal_next(api)

    def progress(self) -> str:
        events = self.tally.events
        return (
            f"{self.tally.requests} requests; deposits {events['deposit']}, withdrawals "
            f"{events['withdrawal']}, press passes {events['press pass']}, reveals "
            f"{events['reveal ok']}, validations {events['validation']}, signals "
            f"{events['signal']}; 5xx {len(self.tally.server_errors)}"
        )

    def _loop(self, name: str, every: float, action: Callable[[Api], None]) -> None:
        api = Api(self.base_url, self.tally)
        interval = every / self.rate
        try:
            while not self.stop.is_set():
                close_old_connections()
                try:
                    action(api)
                except Exception as exc:  # the soak's own failure: counted, shown, not fatal
                    self.tally.count(f"soak error in {name}: {type(exc).__name__}")
                    logger.exception("soak %s failed", name)
                self.stop.wait(interval * self.random.uniform(0.5, 1.5))
        finally:
            connection.close()

    def _next(self) -> int:
        with self._counter_lock:
            self._counter += 1
            return self._counter

    # --- Money on the MT5 server ------------------------------------------------------------

    def deposit(self, api: Api) -> None:
        login_ = self.random.choice(self.world.logins)
        if self.random.random() < 0.1:
            amount = Decimal(self.random.randint(100, 999)) / 100  # under the minimum
        else:
            amount = Decimal(self.random.randint(2000, 50000)) / 100
        ticket = self._post_balance(login_, amount, DEPOSIT_COMMENT)
        if ticket is not None:
            with self.seen.lock:
                self.seen.deals.append(Deal(login_, ticket, amount))
            self.tally.count("deposit")

    def withdraw(self, api: Api) -> None:
        login_ = self.random.choice(self.world.logins)
        balance = SimulatedMT5Account.objects.values_list("balance", flat=True).get(pk=login_)
        amount = (balance * Decimal(self.random.randint(5, 25)) / 100).quantize(Decimal("0.01"))
        if amount <= 0:
            return
        ticket = self._post_balance(login_, -amount, WITHDRAWAL_COMMENT)
        if ticket is not None:
            with self.seen.lock:
                self.seen.deals.append(Deal(login_, ticket, -amount))
            self.tally.count("withdrawal")

    def _post_balance(self, login_: int, amount: Decimal, comment: str) -> int | None:
        """Like a client's payment reaching the server: refused calls are tried again."""
        server = SimulatedMT5Gateway()
        for _ in range(10):
            try:
                return server.post_balance(login_, amount, comment=comment)
            except TransientGatewayError:
                self.tally.count("MT5 call refused by the fault knob (the soak retried)")
            except GatewayError as exc:  # e.g. a withdrawal beyond a balance that just moved
                self.tally.count(f"MT5 refused a soak deal: {exc.code or type(exc).__name__}")
                return None
        return None

    # --- Press passes and their links -------------------------------------------------------

    def activate(self, api: Api) -> None:
        n = self._next()
        method = self.random.choices([m for m, _ in METHODS], [w for _, w in METHODS])[0]
        contact = {"email": f"pp-{n}-{self.world.tag}@soak.test", "telegram": str(800000000 + n)}
        body = {
            "user_id": f"pp-{self.world.tag}-{n}",
            "real_name": f"Soak Person {n}",
            "delivery_method": method,
            "contact_info": contact.get(method, ""),
        }
        for _ in range(5):  # the contract's 503: try again shortly
            answer = api.call(
                "POST", "/api/v1/demo/press-pass/activate/", auth=self.world.integration, json=body
            )
            if answer.status != 503:
                break
            self.tally.count("press pass: 503 from the demo server, retried")
            time.sleep(1)
        if answer.status == 201:
            self.tally.count("press pass")
            self._handed(answer.data.get("account"), answer.data.get("delivery"), method, contact)
        elif answer.status == 202:
            self.tally.count("press pass queued (pool empty or demo server fault)")
            with self.seen.lock:
                self.seen.queued.append((answer.data["request_id"], method))
                if method == "telegram":
                    self.seen.telegram_chats.add(contact["telegram"])

    def _handed(self, account, delivery, method: str, contact: dict) -> None:
        if account:
            self.seen.handed(account["login"])
        link = (delivery or {}).get("link")
        if link:
            self.seen.link(_token(link))
        if method == "telegram" and "telegram" in contact:  # a queued one's chat is known
            with self.seen.lock:
                self.seen.telegram_chats.add(contact["telegram"])

    def follow_queue(self, api: Api) -> None:
        with self.seen.lock:
            if not self.seen.queued:
                return
            request_id, method = self.seen.queued.pop(0)
        answer = api.call(
            "GET",
            f"/api/v1/demo/requests/{request_id}/",
            label="GET /api/v1/demo/requests/{id}/",
            auth=self.world.integration,
        )
        status = (answer.data or {}).get("status") if answer.status == 200 else None
        if status == "assigned":
            self.tally.count("press pass (after waiting in the queue)")
            self._handed(answer.data.get("account"), answer.data.get("delivery"), method, {})
        elif status != "failed":
            with self.seen.lock:
                self.seen.queued.append((request_id, method))

    def read_outbox(self, api: Api) -> None:
        """The people who chose Telegram open the link the bot sent them."""
        with self.seen.lock:
            chats = set(self.seen.telegram_chats)
        if not chats:
            return
        last = getattr(self, "_outbox_after", 0)
        for pk, text in (
            SimulatedTelegramMessage.objects.filter(pk__gt=last, chat_id__in=chats)
            .order_by("pk")
            .values_list("pk", "text")
        ):
            self._outbox_after = pk
            found = TOKEN_IN_LINK.search(text)
            if found:
                self.seen.link(found.group(1))
                self.tally.count("link read from the Telegram outbox")

    def reveal_next(self, api: Api) -> None:
        try:
            token = self.seen.tokens.get_nowait()
        except queue.Empty:
            return
        roll = self.random.random()
        if roll < 0.1:  # two at the same moment: exactly one may win
            twins = [
                threading.Thread(target=self._reveal, args=(Api(self.base_url, self.tally), token))
                for _ in range(2)
            ]
            for thread in twins:
                thread.start()
            for thread in twins:
                thread.join()
            self.tally.count("link revealed by two at once")
            return
        self._reveal(api, token)
        if roll < 0.25:
            self._reveal(api, token)  # again, later: must be refused
            self.tally.count("link revealed a second time")

    def _reveal(self, api: Api, token: str) -> None:
        if self.random.random() < 0.5:
            answer = api.call(
                "POST", "/api/v1/delivery/reveal/", json={"token": token}, label="reveal (API)"
            )
            revealed = (answer.data or {}).get("payload") if answer.status == 200 else None
        else:
            answer = self._reveal_page(api, token)
            revealed = None
        self.seen.revealed(token, answer.status)
        if answer.status == 200:
            self.tally.count("reveal ok")
            if isinstance(revealed, dict) and revealed.get("password"):
                with self.seen.lock:
                    self.seen.passwords.add(revealed["password"])
            elif answer.text:
                self._password_from_page(answer.text)

    def _reveal_page(self, api: Api, token: str) -> Answer:
        """A person: open the page (nothing revealed), press Reveal (POST with CSRF)."""
        page = api.call("GET", f"/d/{token}", label="GET /d/{token}")
        found = CSRF_FIELD.search(page.text or "")
        if page.status != 200 or not found:
            return page
        return api.call(
            "POST",
            f"/d/{token}",
            label="POST /d/{token}",
            data={"csrfmiddlewaretoken": found.group(1)},
            headers={"Referer": f"{self.base_url}/d/{token}"},
        )

    def _password_from_page(self, html: str) -> None:
        found = re.search(r"<dt>password</dt>\s*<dd><code>([^<]+)</code>", html)
        if found:
            with self.seen.lock:
                self.seen.passwords.add(found.group(1))

    # --- Licenses, signals, reads -----------------------------------------------------------

    def validate(self, api: Api) -> None:
        key = self.random.choice(self.world.license_keys)
        answer = api.call(
            "POST",
            "/api/v1/licenses/validate/",
            json={"license_key": key, "machine_id": "soak", "nonce": str(self._next())},
        )
        if answer.status == 200:
            self.tally.count("validation")
            if not (answer.data or {}).get("valid"):
                self.tally.count("validation of an active key said not valid")

    def signal(self, api: Api) -> None:
        answer = api.call(
            "POST",
            "/api/v1/signals/",
            auth=self.world.integration,
            json={
                "channel": self.world.channel,
                "asset": self.random.choice(ASSETS),
                "direction": self.random.choice(["call", "put"]),
                "duration": self.random.randint(5, 12),
            },
        )
        if answer.status == 201:
            self.tally.count("signal")
            self.tally.count("signal trades created", int(answer.data.get("trades_created", 0)))

    def read(self, api: Api) -> None:
        world = self.world
        client = self.random.choice(world.clients)
        session, account = client.session_id, client.broker_account_id
        method, path, label, who = self.random.choice(
            [
                ("GET", "/api/v1/monitoring/status/", None, world.admin),
                ("GET", "/api/v1/demo/pool/status/", None, None),
                (
                    "GET",
                    f"/api/v1/sessions/{session}/status/",
                    "GET /api/v1/sessions/{id}/status/",
                    client,
                ),
                ("GET", f"/api/v1/trades/?session={session}", "GET /api/v1/trades/", client),
                (
                    "GET",
                    f"/api/v1/bonuses/?campaign={world.campaign_id}",
                    "GET /api/v1/bonuses/",
                    world.admin,
                ),
                (
                    "GET",
                    f"/api/v1/broker-accounts/{account}/balance/",
                    "GET /api/v1/broker-accounts/{id}/balance/",
                    client,
                ),
            ]
        )
        answer = api.call(method, path, label=label, auth=who.auth if who else world.integration)
        if answer.status == 401 and who is not None:  # the access token ran out: log in again
            login(api, who)
            with self.seen.lock:
                self.seen.jwts |= {who.access, who.refresh}


def _token(link: str) -> str:
    found = TOKEN_IN_LINK.search(link)
    return found.group(1) if found else link.rstrip("/").rsplit("/", 1)[-1]
