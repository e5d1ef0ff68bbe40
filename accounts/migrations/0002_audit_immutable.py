"""On PostgreSQL, refuse UPDATE and DELETE of audit events in the database itself.

The model and its queryset already refuse them; the trigger also stops raw SQL and other
clients. TRUNCATE is left alone on purpose: it is a table owner's operation, and Django's
test flush uses it. SQLite has no equivalent worth having, so this does nothing there.
"""

from django.db import migrations

CREATE = """
CREATE OR REPLACE FUNCTION accounts_auditevent_refuse_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit events are immutable (% refused on %)', TG_OP, TG_TABLE_NAME;
END;
$$;
CREATE TRIGGER accounts_auditevent_immutable
    BEFORE UPDATE OR DELETE ON accounts_auditevent
    FOR EACH ROW EXECUTE FUNCTION accounts_auditevent_refuse_change();
"""

DROP = """
DROP TRIGGER IF EXISTS accounts_auditevent_immutable ON accounts_auditevent;
DROP FUNCTION IF EXISTS accounts_auditevent_refuse_change();
"""


def create_trigger(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE, params=None)


def drop_trigger(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP, params=None)


class Migration(migrations.Migration):
    dependencies = [("accounts", "0001_initial")]

    operations = [migrations.RunPython(create_trigger, drop_trigger)]
