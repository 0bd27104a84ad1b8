"""The database objects analytics keeps on other apps' tables: change triggers and indexes.

They are SQL, not models, because they live on ``orders_order``, ``orders_delivery``,
``commissions_ledgerentry`` and ``cardpool_cardkey``, whose apps must not know analytics
exists. ``install`` is idempotent and runs after every ``migrate`` (``AnalyticsConfig``): on
SQLite, Django rebuilds a table to alter it and the rebuild drops whatever triggers and indexes
its migrations do not know of, so they are put back each time.

Triggers: every order inserted, and every order whose status, payment, delivery, refund or
dispute columns change, every order a delivery is recorded or emailed for, and every order a
ledger entry is posted for, leaves a mark in
``analytics_orderchange`` inside the writing transaction (see ``analytics.rollups``).
"""

from __future__ import annotations

from django.db.backends.base.base import BaseDatabaseWrapper

WATCHED = ("status", "paid_at", "delivered_at", "refunded_amount", "disputed_at", "paid_amount")

_PG_CHANGED = " OR ".join(f"OLD.{c} IS DISTINCT FROM NEW.{c}" for c in WATCHED)
_SQLITE_CHANGED = " OR ".join(f"OLD.{c} IS NOT NEW.{c}" for c in WATCHED)

POSTGRES = [
    """
    CREATE OR REPLACE FUNCTION analytics_mark_order() RETURNS trigger AS $$
    BEGIN
        INSERT INTO analytics_orderchange (order_id) VALUES (NEW.id);
        RETURN NULL;
    END;
    $$ LANGUAGE plpgsql
    """,
    """
    CREATE OR REPLACE FUNCTION analytics_mark_ledger_order() RETURNS trigger AS $$
    BEGIN
        INSERT INTO analytics_orderchange (order_id) VALUES (NEW.order_id);
        RETURN NULL;
    END;
    $$ LANGUAGE plpgsql
    """,
    "DROP TRIGGER IF EXISTS analytics_order_insert ON orders_order",
    """CREATE TRIGGER analytics_order_insert AFTER INSERT ON orders_order
       FOR EACH ROW EXECUTE FUNCTION analytics_mark_order()""",
    "DROP TRIGGER IF EXISTS analytics_order_update ON orders_order",
    f"""CREATE TRIGGER analytics_order_update AFTER UPDATE ON orders_order
       FOR EACH ROW WHEN ({_PG_CHANGED}) EXECUTE FUNCTION analytics_mark_order()""",
    """
    CREATE OR REPLACE FUNCTION analytics_mark_delivery_order() RETURNS trigger AS $$
    BEGIN
        INSERT INTO analytics_orderchange (order_id) VALUES (NEW.order_id);
        RETURN NULL;
    END;
    $$ LANGUAGE plpgsql
    """,
    "DROP TRIGGER IF EXISTS analytics_delivery_change ON orders_delivery",
    """CREATE TRIGGER analytics_delivery_change AFTER INSERT OR UPDATE OF emailed_at
       ON orders_delivery FOR EACH ROW EXECUTE FUNCTION analytics_mark_delivery_order()""",
    "DROP TRIGGER IF EXISTS analytics_ledger_insert ON commissions_ledgerentry",
    """CREATE TRIGGER analytics_ledger_insert AFTER INSERT ON commissions_ledgerentry
       FOR EACH ROW WHEN (NEW.order_id IS NOT NULL)
       EXECUTE FUNCTION analytics_mark_ledger_order()""",
]

SQLITE = [
    """CREATE TRIGGER IF NOT EXISTS analytics_order_insert AFTER INSERT ON orders_order
       BEGIN INSERT INTO analytics_orderchange (order_id) VALUES (NEW.id); END""",
    f"""CREATE TRIGGER IF NOT EXISTS analytics_order_update AFTER UPDATE ON orders_order
       WHEN {_SQLITE_CHANGED}
       BEGIN INSERT INTO analytics_orderchange (order_id) VALUES (NEW.id); END""",  # noqa: S608
    """CREATE TRIGGER IF NOT EXISTS analytics_delivery_insert AFTER INSERT ON orders_delivery
       BEGIN INSERT INTO analytics_orderchange (order_id) VALUES (NEW.order_id); END""",
    """CREATE TRIGGER IF NOT EXISTS analytics_delivery_emailed
       AFTER UPDATE OF emailed_at ON orders_delivery
       BEGIN INSERT INTO analytics_orderchange (order_id) VALUES (NEW.order_id); END""",
    """CREATE TRIGGER IF NOT EXISTS analytics_ledger_insert AFTER INSERT ON commissions_ledgerentry
       WHEN NEW.order_id IS NOT NULL
       BEGIN INSERT INTO analytics_orderchange (order_id) VALUES (NEW.order_id); END""",
]

# Indexes the reports read by. Orders by placement time: the hours a refresh recomputes, and
# the range reads (top buyers, bought together). Deliveries by time with their latency, for
# the percentiles. Void keys per product, which no other index covers.
INDEXES = [
    "CREATE INDEX IF NOT EXISTS analytics_order_created_idx ON orders_order (created_at)",
    "CREATE INDEX IF NOT EXISTS analytics_delivery_created_idx "
    "ON orders_delivery (created_at, latency_ms)",
    "CREATE INDEX IF NOT EXISTS analytics_cardkey_void_idx "
    "ON cardpool_cardkey (product_id) WHERE status = 'void'",
    # Messages the outbox gave up on, by time (failed deliveries by channel).
    "CREATE INDEX IF NOT EXISTS analytics_outbox_failed_idx "
    "ON orders_outboxmessage (created_at) WHERE status = 'failed'",
]

DROP_POSTGRES = [
    "DROP TRIGGER IF EXISTS analytics_order_insert ON orders_order",
    "DROP TRIGGER IF EXISTS analytics_order_update ON orders_order",
    "DROP TRIGGER IF EXISTS analytics_ledger_insert ON commissions_ledgerentry",
    "DROP TRIGGER IF EXISTS analytics_delivery_change ON orders_delivery",
    "DROP FUNCTION IF EXISTS analytics_mark_order()",
    "DROP FUNCTION IF EXISTS analytics_mark_delivery_order()",
    "DROP FUNCTION IF EXISTS analytics_mark_ledger_order()",
]
DROP_SQLITE = [
    "DROP TRIGGER IF EXISTS analytics_order_insert",
    "DROP TRIGGER IF EXISTS analytics_order_update",
    "DROP TRIGGER IF EXISTS analytics_ledger_insert",
    "DROP TRIGGER IF EXISTS analytics_delivery_insert",
    "DROP TRIGGER IF EXISTS analytics_delivery_emailed",
]
DROP_INDEXES = [
    "DROP INDEX IF EXISTS analytics_order_created_idx",
    "DROP INDEX IF EXISTS analytics_delivery_created_idx",
    "DROP INDEX IF EXISTS analytics_cardkey_void_idx",
    "DROP INDEX IF EXISTS analytics_outbox_failed_idx",
]


def install(connection: BaseDatabaseWrapper) -> None:
    """Create (or re-create) the triggers and indexes; safe to run any number of times."""
    statements = POSTGRES if connection.vendor == "postgresql" else SQLITE
    tables = set(connection.introspection.table_names())
    # An index on a table a later migration creates waits for the post-migrate install.
    indexes = [sql for sql in INDEXES if sql.split(" ON ")[1].split(" ")[0] in tables]
    with connection.cursor() as cursor:
        for sql in statements + indexes:
            cursor.execute(sql)


def uninstall(connection: BaseDatabaseWrapper) -> None:
    statements = DROP_POSTGRES if connection.vendor == "postgresql" else DROP_SQLITE
    with connection.cursor() as cursor:
        for sql in statements + DROP_INDEXES:
            cursor.execute(sql)
