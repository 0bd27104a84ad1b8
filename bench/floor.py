"""The bare-SQL floor: Kami's delivery transaction with nothing around it.

Per paid order, one transaction on its own psycopg2 connection per thread:

    SELECT id FROM cardpool_cardkey WHERE product_id=%s AND status='available'
        ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED
    UPDATE cardpool_cardkey SET status='sold', order_id, slot=1, sold_at=now()
    UPDATE orders_order SET status='delivered', delivered_at=now()
    INSERT INTO orders_delivery (…)
    INSERT INTO commissions_ledgerentry (…) two rows: level 1 and level 2
    COMMIT

It is what the same database, disk and CPU can do at best for this work, so the delivery task's
rate divided by it says how much the application adds. This is the only part of the benchmark
that knows the card pool's tables.

Its orders are copies of one real order (made by ``order_create``), column for column from
``information_schema``, so columns added later need no change here; they are paid (``paid_at``
set: ``order_delivered_only_if_paid``) and carry their own order numbers.
"""

from __future__ import annotations

import contextlib
import threading
import time

import psycopg2
from psycopg2 import sql

OVERRIDES = {
    "order_no": "'FL' || %(tag)s || lpad(g::text, 8, '0')",
    "email": "'floor' || %(tag)s || g || '@example.com'",
    "buyer_identity": "'floor' || %(tag)s || g || '@example.com'",
    "status": "'paid'",
    "created_at": "now()",
    "paid_at": "now()",
    "queued_at": "now()",
    "delivered_at": "NULL",
    "hold_expires_at": "now() + interval '1 hour'",
    "checkout_session_id": "'cs_floor_' || %(tag)s || g",
    "payment_intent": "'pi_floor_' || %(tag)s || g",
    "paid_amount": "t.amount",
    "paid_currency": "t.currency",
}


def connect(dsn: dict):
    return psycopg2.connect(
        dbname=dsn["NAME"],
        user=dsn.get("USER") or None,
        password=dsn.get("PASSWORD") or None,
        host=dsn.get("HOST") or "127.0.0.1",
        port=dsn.get("PORT") or 5432,
    )


def create_paid_orders(dsn: dict, *, template_id: int, count: int, tag: str) -> list[int]:
    """``count`` paid copies of order ``template_id``; their ids."""
    conn = connect(dsn)
    try:
        with conn, conn.cursor() as cur:
            cur.execute(
                "SELECT column_name FROM information_schema.columns "
                "WHERE table_name = 'orders_order' AND table_schema = current_schema() "
                "ORDER BY ordinal_position"
            )
            columns = [name for (name,) in cur.fetchall() if name != "id"]
            values = [
                sql.SQL(OVERRIDES[name])
                if name in OVERRIDES
                else sql.SQL("t.") + sql.Identifier(name)
                for name in columns
            ]
            query = sql.SQL(
                "INSERT INTO orders_order ({cols}) SELECT {vals} FROM orders_order t, "
                "generate_series(1, %(count)s) g WHERE t.id = %(template)s RETURNING id"
            ).format(
                cols=sql.SQL(", ").join(map(sql.Identifier, columns)),
                vals=sql.SQL(", ").join(values),
            )
            cur.execute(query, {"tag": tag, "count": count, "template": template_id})
            return sorted(row[0] for row in cur.fetchall())
    finally:
        conn.close()


def run_floor(
    dsn: dict,
    *,
    product_id: int,
    order_ids: list[int],
    threads: int,
    seconds: float,
    promoter_id: int,
    upline_id: int,
    amount: int,
    currency: str,
) -> dict:
    """Deliver ``order_ids`` with ``threads`` connections for at most ``seconds``."""
    level1, level2 = max(1, amount * 10 // 100), max(1, amount * 3 // 100)
    done = [0] * threads
    errors: list[str] = []
    stop_at = [float("inf")]  # set once every thread is connected
    start_gate = threading.Barrier(threads + 1)

    def work(n: int) -> None:
        conn = connect(dsn)
        try:
            cur = conn.cursor()
            mine = order_ids[n::threads]
            start_gate.wait()
            for order_id in mine:
                if time.monotonic() >= stop_at[0]:
                    break
                cur.execute(
                    "SELECT id FROM cardpool_cardkey WHERE product_id = %s AND status = 'available'"
                    " ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED",
                    (product_id,),
                )
                row = cur.fetchone()
                if row is None:
                    conn.rollback()
                    errors.append("no key left")
                    break
                cur.execute(
                    "UPDATE cardpool_cardkey SET status = 'sold', order_id = %s, slot = 1,"
                    " sold_at = now() WHERE id = %s",
                    (order_id, row[0]),
                )
                cur.execute(
                    "UPDATE orders_order SET status = 'delivered', delivered_at = now()"
                    " WHERE id = %s AND status = 'paid'",
                    (order_id,),
                )
                cur.execute(
                    "INSERT INTO orders_delivery (order_id, key_count, latency_ms, created_at)"
                    " VALUES (%s, 1, 0, now())",
                    (order_id,),
                )
                cur.execute(
                    "INSERT INTO commissions_ledgerentry (promoter_id, kind, amount, currency,"
                    " order_id, level, available_at, reason, created_at) VALUES"
                    " (%s, 'commission', %s, %s, %s, 1, now() + interval '7 days', '', now()),"
                    " (%s, 'commission', %s, %s, %s, 2, now() + interval '7 days', '', now())",
                    (
                        promoter_id,
                        level1,
                        currency,
                        order_id,
                        upline_id,
                        level2,
                        currency,
                        order_id,
                    ),
                )
                conn.commit()
                done[n] += 1
        except Exception as exc:
            errors.append(f"{type(exc).__name__}: {exc}".strip())
            with contextlib.suppress(threading.BrokenBarrierError):
                start_gate.abort()
        finally:
            conn.close()

    workers = [threading.Thread(target=work, args=(n,)) for n in range(threads)]
    for worker in workers:
        worker.start()
    with contextlib.suppress(threading.BrokenBarrierError):
        start_gate.wait(timeout=30)
    started = time.monotonic()
    stop_at[0] = started + seconds
    for worker in workers:
        worker.join()
    elapsed = time.monotonic() - started
    total = sum(done)
    return {
        "threads": threads,
        "delivered": total,
        "seconds": elapsed,
        "rate": total / elapsed if elapsed > 0 else 0.0,
        "errors": sorted(set(errors)),
    }
