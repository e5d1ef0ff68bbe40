"""`EncryptedTextField`: a text column that holds only ciphertext (the keyring's envelope).

Other apps use it for passwords and other secrets::

    class DemoAccount(models.Model):
        row_key = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
        password = EncryptedTextField(bind_to="row_key")

- Reading the attribute gives the plaintext; the database, `values()`, `values_list()`,
  `dumpdata` and fixtures only ever see the envelope (`enc:v1:<key id>:...`).
- The ciphertext is bound to its row: the associated data is
  `<app_label>.<model>.<field>:<value of bind_to>`. `bind_to` names a field whose value is
  known before the row is inserted (a UUID with a default, a unique hash); an auto-increment
  primary key is not (the system check says so). A ciphertext copied into another row fails
  to decrypt there.
- Values are encrypted in `save()` / `bulk_create()` (`pre_save`, which sees the row). A
  `QuerySet.update()` or `bulk_update()` with a plaintext is refused: it would store it in the
  clear. Writing `None` is fine. Encrypted values cannot be filtered on.
- `manage.py rotate_keys` finds every such field and re-encrypts it under the newest key.
"""

from typing import cast

from django.core import checks
from django.db import models
from django.db.models.query_utils import DeferredAttribute

from .crypto import decrypt, encrypt, is_envelope


class Ciphertext(str):
    """A value as stored: an envelope, not decrypted (what the database hands back)."""

    __slots__ = ()


class Decrypted(str):
    """A plaintext read from a row, still knowing the ciphertext it came from.

    Django's raw saves (loaddata) write `getattr(obj, field)` without `pre_save`: they write
    `stored` back, never the plaintext. Assigned to another row, it is a plaintext like any
    other and is encrypted for that row.
    """

    __slots__ = ("stored",)
    stored: "Ciphertext"

    def __new__(cls, plaintext: str, stored: "Ciphertext"):
        value = super().__new__(cls, plaintext)
        value.stored = stored
        return value


class _DecryptingAttribute(DeferredAttribute):
    """The model attribute: decrypts stored ciphertext on access, with the row's binding."""

    def __get__(self, instance, cls=None):
        if instance is None:
            return self
        value = super().__get__(instance, cls)
        if isinstance(value, Ciphertext):
            return Decrypted(decrypt(value, aad=self.field.aad_for(instance)), value)
        return value

    def __set__(self, instance, value):
        instance.__dict__[self.field.attname] = value


class EncryptedTextField(models.TextField):
    """A secret at rest: AES-256-GCM under the keyring's newest key, bound to its row."""

    descriptor_class = _DecryptingAttribute

    def __init__(self, *args, bind_to: str = "pk", **kwargs):
        self.bind_to = bind_to
        kwargs.setdefault("editable", False)  # never in a form unless a form asks for it
        super().__init__(*args, **kwargs)

    def deconstruct(self):
        name, path, args, kwargs = super().deconstruct()
        kwargs["bind_to"] = self.bind_to
        if kwargs.get("editable", True) is False:
            del kwargs["editable"]
        else:
            kwargs["editable"] = True
        return name, path, args, kwargs

    # --- Binding ----------------------------------------------------------------------------

    def aad_for_value(self, bind_value) -> str:
        """The associated data for this field in the row whose `bind_to` value is given."""
        if bind_value is None or bind_value == "":
            raise ValueError(
                f"{self.model._meta.label}.{self.name}: `{self.bind_to}` has no value yet, "
                "so the ciphertext cannot be bound to its row"
            )
        return f"{self.model._meta.label_lower}.{self.name}:{bind_value}"

    def aad_for(self, instance) -> str:
        return self.aad_for_value(self.bind_value(instance))

    def bind_value(self, instance):
        if self.bind_to == "pk":
            return instance.pk
        return getattr(instance, self.bind_field().attname)

    def bind_field(self) -> models.Field:
        meta = self.model._meta
        # bind_to names a column of the row (a relation has no value to bind to).
        return cast(models.Field, meta.pk if self.bind_to == "pk" else meta.get_field(self.bind_to))

    # --- To and from the database -----------------------------------------------------------

    def pre_save(self, model_instance, add):
        value = model_instance.__dict__.get(self.attname)
        if value is None or isinstance(value, Ciphertext):
            return value  # unchanged values are never re-encrypted (rotate_keys does that)
        stored = Ciphertext(encrypt(str(value), aad=self.aad_for(model_instance)))
        model_instance.__dict__[self.attname] = stored
        return stored

    def get_db_prep_save(self, value, connection):
        if value is None:
            return None
        if isinstance(value, Decrypted):
            return str(value.stored)
        if not isinstance(value, Ciphertext):
            raise ValueError(
                f"{self.model._meta.label}.{self.name} is encrypted: write it with save() or "
                "bulk_create(); update() and bulk_update() would store a plaintext"
            )
        return str(value)

    def from_db_value(self, value, expression, connection):
        return None if value is None else Ciphertext(value)

    def to_python(self, value):
        # Deserialization (loaddata) hands back what dumpdata wrote: the envelope.
        if isinstance(value, str) and not isinstance(value, Ciphertext) and is_envelope(value):
            return Ciphertext(value)
        return value

    # A null stays null in dumpdata's output (Django's own fields do the same).
    def value_to_string(self, obj) -> str | None:  # type: ignore[override]
        """dumpdata writes the envelope, never the plaintext."""
        value = obj.__dict__.get(self.attname)
        if value is None or isinstance(value, Ciphertext):
            return value
        return encrypt(str(value), aad=self.aad_for(obj))

    # --- Checks -----------------------------------------------------------------------------

    def check(self, **kwargs):
        return [*super().check(**kwargs), *self._check_bind_to()]

    def _check_bind_to(self):
        try:
            field = self.bind_field()
        except Exception:
            return [
                checks.Error(
                    f"bind_to={self.bind_to!r} names no field of {self.model._meta.label}",
                    obj=self,
                    id="delivery.E001",
                )
            ]
        if isinstance(field, (models.AutoField, models.BigAutoField, models.SmallAutoField)):
            return [
                checks.Error(
                    f"bind_to={self.bind_to!r} is an auto-increment key: its value is not known "
                    "before the insert, so the ciphertext cannot be bound to the row",
                    hint="Add `row_key = models.UUIDField(default=uuid.uuid4, unique=True, "
                    "editable=False)` and use bind_to='row_key'.",
                    obj=self,
                    id="delivery.E002",
                )
            ]
        return []
