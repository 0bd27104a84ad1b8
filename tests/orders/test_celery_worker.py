"""End to end through a real Celery worker on Redis: webhook → inbox → queue → worker → keys."""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from orders.models import Order, OrderStatus, PaymentEvent
from shop.celery import app as celery_app
from shop.processes import celery_worker_command, database_url
from tests.factories import OrderFactory, stock_product
from tests.stripe_helpers import completed_event, post_event

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres, pytest.mark.redis]

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def celery_worker_process():
    """A real ``celery worker`` subprocess on Redis, reading the test database."""
    queue = f"kami-test-{uuid.uuid4().hex[:8]}"
    env = os.environ | {
        "DJANGO_SETTINGS_MODULE": "shop.settings_test",
        # Tagged, so tests can tell the worker's PostgreSQL sessions from any other.
        "DATABASE_URL": f"{database_url(connection.settings_dict)}?application_name={queue}",
        "REDIS_URL": settings.REDIS_URL,
        "CELERY_TASK_ALWAYS_EAGER": "0",
        "KAMI_TASK_QUEUE": queue,
    }
    log_path = ROOT / "var" / f"{queue}.log"
    log = open(log_path, "w")  # noqa: SIM115 - closed below
    worker = subprocess.Popen(
        celery_worker_command(queue=queue, solo=True),
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    previous = (celery_app.conf.task_always_eager, celery_app.conf.task_default_queue)
    celery_app.conf.task_always_eager = False
    celery_app.conf.task_default_queue = queue
    worker.log_path = log_path
    worker.application_name = queue
    try:
        yield worker
    finally:
        celery_app.conf.task_always_eager, celery_app.conf.task_default_queue = previous
        worker.terminate()
        try:
            worker.wait(timeout=15)
        except subprocess.TimeoutExpired:
            worker.kill()
        log.close()


def wait_for(predicate, timeout: float = 40.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


def worker_log_has(worker, *words: str) -> bool:
    """Whether one line of the worker's log holds every word. The worker writes its log in its
    own time, after the commits the test sees, so a test must poll this (``wait_for``), never
    read the log once."""
    lines = worker.log_path.read_text().splitlines()
    return any(all(word in line for word in words) for line in lines)


def test_real_worker_delivers_a_paid_order(client, celery_worker_process):
    product = stock_product(2, slug="worker")
    order = OrderFactory(product=product, quantity=1)
    response = post_event(client, completed_event(order))
    assert response.status_code == 200
    # The webhook answered before any delivery: the task waits in Redis for the worker.
    delivered = wait_for(lambda: Order.objects.get(pk=order.pk).status == OrderStatus.DELIVERED)
    assert delivered, (
        f"not delivered in time: {Order.objects.get(pk=order.pk).status}, "
        f"events {list(PaymentEvent.objects.values_list('type', 'processed_at', 'last_error'))}; "
        f"worker log {celery_worker_process.log_path}"
    )
    assert celery_worker_process.poll() is None
    assert PaymentEvent.objects.get().processed_at is not None
    assert Order.objects.get(pk=order.pk).keys.count() == 1
    # Proof the work ran in the worker process, not in-process in the test: the worker logs
    # the task's success once it returns, which may be a moment after its commit.
    assert wait_for(
        lambda: worker_log_has(celery_worker_process, "process_payment_event", "succeeded")
    ), celery_worker_process.log_path.read_text()[-3000:]


def _worker_backends(conn, application_name: str) -> set[int]:
    with conn.cursor() as cursor:
        cursor.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
            "AND application_name = %s",
            [application_name],
        )
        return {row[0] for row in cursor.fetchall()}


def test_the_worker_keeps_one_database_connection_across_tasks(client, celery_worker_process):
    """Celery closes Django's connection around every task unless told otherwise; a connect
    per delivery was 8–9 % of the worker's time. The solo worker must deliver several orders
    over one and the same PostgreSQL session."""
    product = stock_product(4, slug="reuse")
    seen: list[set[int]] = []
    for _ in range(4):
        order = OrderFactory(product=product, quantity=1)
        assert post_event(client, completed_event(order)).status_code == 200
        assert wait_for(lambda o=order: Order.objects.get(pk=o.pk).status == OrderStatus.DELIVERED)
        seen.append(_worker_backends(connection, celery_worker_process.application_name))
    # One worker session, open between tasks and never reopened.
    assert len(seen[0]) == 1 and all(s == seen[0] for s in seen), seen


def test_worker_killed_mid_delivery_loses_nothing_and_delivers_once(
    client, celery_worker_process, django_capture_on_commit_callbacks
):
    """SIGKILL the worker while its delivery transaction waits on the order's key rows: PostgreSQL
    rolls that transaction back, the event stays unprocessed, and the sweeper delivers it —
    once."""
    import signal
    import threading
    from datetime import timedelta

    from django.db import connections, transaction
    from django.utils import timezone

    from cardpool.models import CardKey
    from orders.models import Delivery
    from orders.tasks import sweep_unprocessed_payment_events

    product = stock_product(2, slug="crash")
    order = OrderFactory(product=product, quantity=1)
    holding, release = threading.Event(), threading.Event()

    def hold_the_keys() -> None:
        with transaction.atomic():
            list(CardKey.objects.select_for_update().filter(order=order))
            holding.set()
            release.wait(60)
        connections["default"].close()

    holder = threading.Thread(target=hold_the_keys)
    holder.start()
    assert holding.wait(10)
    try:
        assert post_event(client, completed_event(order)).status_code == 200
        # The worker picks the task up and blocks inside its transaction on the key rows.
        assert wait_for(
            lambda: worker_log_has(celery_worker_process, "process_payment_event", "received")
        )
        with connection.cursor() as cursor:
            assert wait_for(lambda: _lock_waiters(cursor) > 0, timeout=20)
        celery_worker_process.send_signal(signal.SIGKILL)
        celery_worker_process.wait(10)
    finally:
        release.set()
        holder.join(10)

    assert wait_for(lambda: _backends_of(connection) == 0, timeout=20)
    event = PaymentEvent.objects.get()
    assert event.processed_at is None  # the killed transaction left nothing behind
    assert Order.objects.get(pk=order.pk).status == OrderStatus.PENDING
    assert CardKey.objects.filter(order=order, status="sold").count() == 0

    celery_app.conf.task_always_eager = True  # this process now plays the surviving worker
    PaymentEvent.objects.update(received_at=timezone.now() - timedelta(minutes=5))
    with django_capture_on_commit_callbacks(execute=True):
        assert sweep_unprocessed_payment_events() == 1
        assert sweep_unprocessed_payment_events() == 0
    assert Order.objects.get(pk=order.pk).status == OrderStatus.DELIVERED
    assert CardKey.objects.filter(order=order, status="sold").count() == 1
    assert Delivery.objects.filter(order=order).count() == 1


def _lock_waiters(cursor) -> int:
    cursor.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
        "AND wait_event_type = 'Lock'"
    )
    return cursor.fetchone()[0]


def _backends_of(conn) -> int:
    """Other sessions still active in a transaction on the test database."""
    with conn.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid() AND state IN ('active', 'idle in transaction')"
        )
        return cursor.fetchone()[0]
