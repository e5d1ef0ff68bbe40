"""A dump of every table holds no payload, and its rows alone open nothing.

Deliveries by every channel, some revealed, some not (a Telegram one still waiting for its
worker, so its link sits in the database, encrypted). Then every row of every table is read
raw, as `pg_dump` would, and searched. The simulated Telegram server's outbox is "outside"
(it stands for Telegram's servers, where a sent link does live), so this test sends nothing
through it.
"""

import pytest
from django.core import mail
from django.db import connection

from delivery.crypto import CryptoError, decrypt, open_with_token
from delivery.models import Delivery
from delivery.services import delivery_reveal, delivery_send, delivery_view

from .conftest import PAYLOAD, SECRET, token_of

pytestmark = pytest.mark.django_db


def dump_every_table() -> list[str]:
    """Every value of every row of every table, as text (what a dump would hold)."""
    values = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names(cursor):
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")  # noqa: S608
            for row in cursor.fetchall():
                values.extend(
                    v.decode("latin-1") if isinstance(v, bytes | memoryview) else str(v)
                    for v in row
                    if v is not None
                )
    return values


def test_a_dump_after_creating_and_revealing_holds_no_payload_and_opens_nothing(create):
    payloads = [
        {"login": 5550100 + n, "password": f"{SECRET}-{n}", "server": "Demo"} for n in range(4)
    ]
    api = create(method="api", payload=payloads[0])
    qr = create(method="qr", payload=payloads[1])
    email = create(method="email", contact="client@example.com", payload=payloads[2])
    waiting = create(method="telegram", contact="5550001", payload=payloads[3])
    delivery_send(delivery_id=email.delivery.pk)
    delivery_view(token=token_of(api), ip="203.0.113.1", user_agent="TelegramBot")
    assert delivery_reveal(token=token_of(api), ip=None).payload == payloads[0]
    assert delivery_reveal(token=token_of(email), ip=None).payload == payloads[2]
    assert len(mail.outbox) == 1

    dump = dump_every_table()
    text = "\n".join(dump)

    for payload in payloads:
        assert payload["password"] not in text
    assert SECRET not in text
    for result in (api, qr, email, waiting):
        assert token_of(result) not in text
    assert "enc:v1:" in text  # the ciphertexts are there, just useless

    # Rows alone: even with the server's keys (which a dump does not hold), the payloads of
    # the live links are sealed with their tokens. Try every value of the dump as the token.
    for result in (qr, waiting):
        row = Delivery.objects.get(pk=result.delivery.pk)
        sealed = decrypt(
            Delivery.objects.values_list("payload", flat=True).get(pk=row.pk),
            aad=f"delivery.delivery.payload:{row.token_hash}",
        )
        assert sealed.startswith("t1:") and SECRET not in sealed
        for candidate in set(dump):
            with pytest.raises(CryptoError):
                open_with_token(sealed, token=candidate, aad=f"delivery.payload:{row.token_hash}")
    assert delivery_reveal(token=token_of(qr), ip=None).payload == payloads[1]


def test_revealed_expired_and_superseded_rows_keep_no_ciphertext(create):
    from delivery.services import delivery_resend

    revealed = create(purpose="a")
    delivery_reveal(token=token_of(revealed), ip=None)
    superseded = create(purpose="b", method="telegram", contact="5550001")
    delivery_resend(purpose="b", payload=PAYLOAD, method="api")

    rows = Delivery.objects.filter(pk__in=[revealed.delivery.pk, superseded.delivery.pk])
    assert list(rows.values_list("payload", "pending_link")) == [(None, None), (None, None)]
