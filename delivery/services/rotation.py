"""Key rotation: every `EncryptedTextField` value of every installed model, re-encrypted under
the keyring's newest key.

In batches by primary key, each batch one short transaction of conditional UPDATEs (a value
changed meanwhile is left alone, and counted). Values already under the newest key are skipped
in SQL, so a run that stopped half way simply runs again. A value under a key that is not
configured is counted as failed, named in the report, and the run goes on.
"""

from collections.abc import Callable
from dataclasses import dataclass, field

from django.apps import apps
from django.db import models, transaction

from delivery.crypto import CryptoError, decrypt, encrypt, get_keyring, key_id_of
from delivery.fields import Ciphertext, EncryptedTextField


@dataclass
class FieldRotation:
    """What one run did to one field."""

    label: str  # app_label.Model.field
    rotated: int = 0
    current: int = 0  # already under the newest key
    changed: int = 0  # written by someone else while we worked: left alone
    failed: int = 0
    failures: list[str] = field(default_factory=list)  # the first few, "pk 12: why"


@dataclass
class RotationReport:
    newest_key: str
    fields: list[FieldRotation]
    dry_run: bool = False

    @property
    def rotated(self) -> int:
        return sum(f.rotated for f in self.fields)

    @property
    def current(self) -> int:
        return sum(f.current for f in self.fields)

    @property
    def changed(self) -> int:
        return sum(f.changed for f in self.fields)

    @property
    def failed(self) -> int:
        return sum(f.failed for f in self.fields)


def encrypted_fields() -> list[tuple[type[models.Model], EncryptedTextField]]:
    """Every concrete `EncryptedTextField` of every installed model."""
    found = []
    for model in apps.get_models():
        if model._meta.proxy or not model._meta.managed:
            continue
        for model_field in model._meta.concrete_fields:
            if isinstance(model_field, EncryptedTextField) and model_field.model is model:
                found.append((model, model_field))
    return found


def keys_rotate(
    *,
    batch_size: int = 500,
    dry_run: bool = False,
    progress: Callable[[FieldRotation], None] | None = None,
) -> RotationReport:
    """Re-encrypt every encrypted value under the newest key; counts per field."""
    newest = get_keyring().newest_id
    report = RotationReport(newest_key=newest, fields=[], dry_run=dry_run)
    for model, model_field in encrypted_fields():
        result = _rotate_field(model, model_field, newest, batch_size, dry_run, progress)
        report.fields.append(result)
    return report


def _rotate_field(model, model_field, newest, batch_size, dry_run, progress) -> FieldRotation:
    attname = model_field.attname
    label = f"{model._meta.label}.{model_field.name}"
    result = FieldRotation(label=label)
    bind = model_field.bind_field().attname
    current_prefix = f"enc:v1:{newest}:"
    base = model._base_manager.exclude(**{f"{attname}__isnull": True})
    result.current = base.filter(**{f"{attname}__startswith": current_prefix}).count()
    stale = base.exclude(**{f"{attname}__startswith": current_prefix})
    last_pk = None
    while True:
        batch = stale.order_by("pk")
        if last_pk is not None:
            batch = batch.filter(pk__gt=last_pk)
        rows = list(batch.values_list("pk", bind, attname)[:batch_size])
        if not rows:
            break
        last_pk = rows[-1][0]
        updates = []
        for pk, bind_value, stored in rows:
            try:
                aad = model_field.aad_for_value(bind_value)
                if key_id_of(stored) == newest:  # pragma: no cover - filtered in SQL
                    result.current += 1
                    continue
                fresh = Ciphertext(encrypt(decrypt(stored, aad=aad), aad=aad))
            except (CryptoError, ValueError) as exc:
                result.failed += 1
                if len(result.failures) < 20:
                    result.failures.append(f"pk {pk}: {exc}")
                continue
            updates.append((pk, stored, fresh))
        if dry_run:
            result.rotated += len(updates)
        else:
            with transaction.atomic():
                for pk, stored, fresh in updates:
                    written = model._base_manager.filter(
                        **{"pk": pk, attname: Ciphertext(stored)}
                    ).update(**{attname: fresh})
                    if written:
                        result.rotated += 1
                    else:
                        result.changed += 1
        if progress is not None:
            progress(result)
        if len(rows) < batch_size:
            break
    return result
