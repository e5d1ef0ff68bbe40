"""`manage.py rotate_keys`: write under key 1, rotate to key 2, drop key 1, all still opens."""

import io

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from delivery.crypto import UnknownKeyError
from delivery.errors import LinkUsedError
from delivery.models import Delivery, DeliveryAttempt
from delivery.services import delivery_reveal, encrypted_fields, keys_rotate

from .conftest import KEY1, KEY2, PAYLOAD, token_of

pytestmark = pytest.mark.django_db


def stored_values() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT payload, pending_link FROM delivery_delivery ORDER BY id")
        return [value for row in cursor.fetchall() for value in row if value is not None]


def rotate(**options) -> str:
    out = io.StringIO()
    call_command("rotate_keys", stdout=out, stderr=out, **options)
    return out.getvalue()


@pytest.fixture
def written_under_key1(create):
    """Three api deliveries and two waiting Telegram ones: 7 encrypted values under k1."""
    results = [create(purpose=f"p{n}") for n in range(3)]
    results += [create(method="telegram", contact="5550001", purpose=f"t{n}") for n in range(2)]
    assert len(stored_values()) == 7
    assert all(v.startswith("enc:v1:k1:") for v in stored_values())
    return results


def test_rotation_lets_the_old_key_be_dropped(written_under_key1, settings):
    settings.ENCRYPTION_KEYS = f"{KEY2},{KEY1}"

    output = rotate(batch_size=2)

    assert "newest key: k2" in output
    assert "delivery.Delivery.payload: rotated 5, already current 0" in output
    assert "delivery.Delivery.pending_link: rotated 2, already current 0" in output
    assert "total: rotated 7, already current 0, changed meanwhile 0, failed 0" in output
    assert all(v.startswith("enc:v1:k2:") for v in stored_values())

    settings.ENCRYPTION_KEYS = KEY2  # key 1 dropped
    for result in written_under_key1:
        assert delivery_reveal(token=token_of(result), ip=None).payload == PAYLOAD
    for result in written_under_key1[3:]:
        assert Delivery.objects.filter(pk=result.delivery.pk).exists()


def test_a_second_run_finds_everything_current(written_under_key1, settings):
    settings.ENCRYPTION_KEYS = f"{KEY2},{KEY1}"
    rotate()

    assert "total: rotated 0, already current 7, changed meanwhile 0, failed 0" in rotate()


def test_an_interrupted_run_resumes_where_it_stopped(written_under_key1, settings):
    settings.ENCRYPTION_KEYS = f"{KEY2},{KEY1}"

    def crash(_):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        keys_rotate(batch_size=2, progress=crash)
    assert sum(v.startswith("enc:v1:k2:") for v in stored_values()) == 2

    report = keys_rotate(batch_size=2)
    assert (report.rotated, report.current, report.failed) == (5, 2, 0)


def test_a_dry_run_writes_nothing(written_under_key1, settings):
    settings.ENCRYPTION_KEYS = f"{KEY2},{KEY1}"
    before = stored_values()

    assert "total: would rotate 7" in rotate(dry_run=True)
    assert stored_values() == before


def test_a_value_under_a_key_that_was_dropped_too_early_is_named(create, settings):
    result = create()
    settings.ENCRYPTION_KEYS = KEY2

    with pytest.raises(CommandError, match="could not be re-encrypted"):
        rotate()
    with pytest.raises(UnknownKeyError, match="key id 'k1'"):
        delivery_reveal(token=token_of(result), ip=None)

    # Nothing was burnt: with the key back, the link still reveals once.
    assert DeliveryAttempt.objects.get().outcome == "error"
    settings.ENCRYPTION_KEYS = f"{KEY2},{KEY1}"
    assert delivery_reveal(token=token_of(result), ip=None).payload == PAYLOAD
    with pytest.raises(LinkUsedError):
        delivery_reveal(token=token_of(result), ip=None)


def test_the_failure_report_names_the_missing_key(create, settings):
    create()
    settings.ENCRYPTION_KEYS = KEY2
    report = keys_rotate()
    assert report.failed == 1
    [failure] = [f for field in report.fields for f in field.failures]
    assert "key id 'k1'" in failure


def test_every_encrypted_field_of_every_installed_model_is_found():
    found = {f"{model._meta.label}.{field.name}" for model, field in encrypted_fields()}
    assert {"delivery.Delivery.payload", "delivery.Delivery.pending_link"} <= found
