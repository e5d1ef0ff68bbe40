"""`EncryptedTextField`: ciphertext in the database, plaintext on the attribute, bound to its
row, and no way to write a plaintext around it. (Tested on `Delivery.pending_link`.)"""

import pytest
from django.core import serializers
from django.db import connection, models, transaction
from django.test.utils import isolate_apps

from delivery.crypto import DecryptionError
from delivery.fields import Ciphertext, EncryptedTextField
from delivery.models import Delivery

pytestmark = pytest.mark.django_db


def raw(pk: int, column: str = "pending_link") -> str | None:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {column} FROM delivery_delivery WHERE id = %s", [pk])  # noqa: S608
        return cursor.fetchone()[0]


@pytest.fixture
def delivery(create):
    row = create(method="api").delivery
    row.pending_link = "plain secret value"
    row.save()
    return Delivery.objects.get(pk=row.pk)


def test_the_database_holds_the_envelope_and_the_attribute_the_plaintext(delivery):
    stored = raw(delivery.pk)

    assert stored.startswith("enc:v1:k1:")
    assert "plain secret" not in stored
    assert delivery.pending_link == "plain secret value"


def test_values_and_serialized_dumps_show_only_ciphertext(delivery):
    [(value,)] = Delivery.objects.filter(pk=delivery.pk).values_list("pending_link")
    dumped = serializers.serialize("json", Delivery.objects.filter(pk=delivery.pk))

    assert isinstance(value, Ciphertext)
    assert value.startswith("enc:v1:")
    assert "plain secret" not in dumped
    assert value in dumped


def test_a_dump_loads_back_and_still_decrypts(delivery):
    dumped = serializers.serialize("json", Delivery.objects.filter(pk=delivery.pk))
    Delivery.objects.filter(pk=delivery.pk).update(pending_link=None)

    for obj in serializers.deserialize("json", dumped):
        obj.save()

    assert Delivery.objects.get(pk=delivery.pk).pending_link == "plain secret value"
    assert raw(delivery.pk).startswith("enc:v1:k1:")


def test_saving_again_does_not_re_encrypt_an_unchanged_value(delivery):
    before = raw(delivery.pk)
    delivery.save()
    assert raw(delivery.pk) == before


def test_a_ciphertext_copied_into_another_row_does_not_decrypt_there(create, delivery):
    other = create(purpose="other").delivery
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE delivery_delivery SET pending_link = %s WHERE id = %s",
            [raw(delivery.pk), other.pk],
        )

    with pytest.raises(DecryptionError, match="another row"):
        _ = Delivery.objects.get(pk=other.pk).pending_link


def test_writing_a_plaintext_with_update_is_refused(delivery):
    with pytest.raises(ValueError, match="would store a plaintext"), transaction.atomic():
        Delivery.objects.filter(pk=delivery.pk).update(pending_link="in the clear")
    assert raw(delivery.pk).startswith("enc:v1:")


def test_a_value_read_from_one_row_and_assigned_to_another_is_encrypted_for_that_row(
    create, delivery
):
    other = create(purpose="other").delivery
    other.pending_link = delivery.pending_link
    other.save()

    assert raw(other.pk) != raw(delivery.pk)
    assert Delivery.objects.get(pk=other.pk).pending_link == "plain secret value"


def test_none_stays_null(delivery):
    Delivery.objects.filter(pk=delivery.pk).update(pending_link=None)
    assert raw(delivery.pk) is None
    assert Delivery.objects.get(pk=delivery.pk).pending_link is None


@isolate_apps("delivery")
def test_binding_to_an_auto_increment_key_is_a_system_check_error():
    class Secretive(models.Model):  # noqa: DJ008
        password = EncryptedTextField()

        class Meta:
            app_label = "delivery"

    class Elsewhere(models.Model):  # noqa: DJ008
        password = EncryptedTextField(bind_to="nope")

        class Meta:
            app_label = "delivery"

    assert [e.id for e in Secretive._meta.get_field("password").check()] == ["delivery.E002"]
    assert [e.id for e in Elsewhere._meta.get_field("password").check()] == ["delivery.E001"]
