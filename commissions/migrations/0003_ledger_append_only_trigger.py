"""The ledger is append-only in the database itself, not only in ``LedgerEntry.save``.

On PostgreSQL a trigger refuses any UPDATE of a ledger row's money fields and any DELETE, so
neither a raw query, a bulk ``update()`` nor a cascading delete can rewrite history. (TRUNCATE,
which the test suite uses to reset tables, does not fire row triggers.) SQLite, the zero-config
development database, relies on the model's guards alone.
"""

from django.db import migrations

CREATE = """
CREATE OR REPLACE FUNCTION commissions_ledger_append_only() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'commissions_ledgerentry is append-only: DELETE refused';
    END IF;
    IF NEW.amount IS DISTINCT FROM OLD.amount
        OR NEW.promoter_id IS DISTINCT FROM OLD.promoter_id
        OR NEW.kind IS DISTINCT FROM OLD.kind
        OR NEW.order_id IS DISTINCT FROM OLD.order_id
        OR NEW.level IS DISTINCT FROM OLD.level
        OR NEW.withdrawal_id IS DISTINCT FROM OLD.withdrawal_id
        OR NEW.available_at IS DISTINCT FROM OLD.available_at
        OR NEW.currency IS DISTINCT FROM OLD.currency THEN
        RAISE EXCEPTION 'commissions_ledgerentry is append-only: UPDATE refused';
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;
DROP TRIGGER IF EXISTS commissions_ledger_append_only ON commissions_ledgerentry;
CREATE TRIGGER commissions_ledger_append_only
    BEFORE UPDATE OR DELETE ON commissions_ledgerentry
    FOR EACH ROW EXECUTE FUNCTION commissions_ledger_append_only();
"""

DROP = """
DROP TRIGGER IF EXISTS commissions_ledger_append_only ON commissions_ledgerentry;
DROP FUNCTION IF EXISTS commissions_ledger_append_only();
"""


def create(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE)


def drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP)


class Migration(migrations.Migration):
    dependencies = [("commissions", "0002_ledger")]

    operations = [migrations.RunPython(create, drop)]
