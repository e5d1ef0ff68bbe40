import io

import pytest
from django.core.management import call_command
from django.db import connection

from licensing.models import License

pytestmark = pytest.mark.django_db


def test_the_database_holds_no_key_in_clear(make_license, monkeypatch):
    """Nor in the deliveries of keys sent by a one-time link (sealed there)."""
    from licensing.services import license_create_delivered, licenses

    keys = [make_license(license_type)[1] for license_type in License.Type.values]
    generate = licenses.key_generate
    monkeypatch.setattr(licenses, "key_generate", lambda: keys.append(generate()) or keys[-1])
    for method, contact in (("api", ""), ("email", "client@example.com")):
        license_create_delivered(
            method=method, contact=contact, account_id=f"D-{method}", license_type="TRIAL"
        )
    assert len(keys) == len(License.Type.values) + 2
    dump = io.StringIO()
    call_command("dumpdata", stdout=dump)
    text = dump.getvalue()
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names():
            cursor.execute(f'SELECT * FROM "{table}"')  # noqa: S608 (our own table names)
            text += repr(cursor.fetchall())
    for key in keys:
        body = key.replace("-", "")
        assert key not in text
        assert body not in text
        assert key[3:22] not in text  # no long fragment either
