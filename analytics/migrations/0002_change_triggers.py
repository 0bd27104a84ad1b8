"""The change triggers and report indexes on other apps' tables (``analytics.schema``).

Also re-installed after every ``migrate`` (``AnalyticsConfig``), since SQLite drops them when
Django rebuilds a table. Existing orders are rolled up once here, so a shop that upgrades
sees its history in the reports at once.
"""

from django.db import migrations


def install(apps, schema_editor):
    from analytics.schema import install as install_schema

    install_schema(schema_editor.connection)
    with schema_editor.connection.cursor() as cursor:
        cursor.execute("INSERT INTO analytics_orderchange (order_id) SELECT id FROM orders_order")


def uninstall(apps, schema_editor):
    from analytics.schema import uninstall as uninstall_schema

    uninstall_schema(schema_editor.connection)


class Migration(migrations.Migration):
    dependencies = [
        ("analytics", "0001_rollups"),
        ("orders", "0007_orderevent_kind_choices"),
        ("commissions", "0003_ledger_append_only_trigger"),
        ("cardpool", "0002_key_reservations"),
    ]

    operations = [migrations.RunPython(install, uninstall)]
