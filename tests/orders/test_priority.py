"""The priority lane: which orders are in it, and that their payments go to a queue of their
own, which a worker of its own serves while the main queue is backed up."""

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
from orders.priority import payment_route, priority_queue
from orders.services import CheckoutRequest, order_create
from orders.tasks import process_payment_event
from shop.celery import app as celery_app
from shop.models import ShopSettings
from shop.processes import celery_worker_command, database_url
from tests.factories import OrderFactory, stock_product
from tests.stripe_helpers import completed_event, post_event, refund_event

ROOT = Path(__file__).resolve().parents[2]


def checkout(slug: str, email: str, quantity: int = 1) -> Order:
    return order_create(req=CheckoutRequest(product=slug, quantity=quantity, email=email))


def set_priority_amount(amount: int) -> None:
    # The unpaid-order caps stay out of the way: one buyer checks out several times here.
    ShopSettings.objects.update_or_create(
        pk=1,
        defaults={"priority_amount": amount, "max_unpaid_per_email": 99, "max_unpaid_per_ip": 99},
    )


@pytest.mark.django_db
@pytest.mark.postgres
def test_orders_at_or_above_the_owners_amount_are_priority():
    stock_product(10, slug="big", price=2500)
    set_priority_amount(5000)
    assert not checkout("big", "a@example.com", quantity=1).priority
    assert checkout("big", "b@example.com", quantity=2).priority  # 50.00: the amount itself
    assert checkout("big", "c@example.com", quantity=3).priority
    set_priority_amount(0)  # off
    assert not checkout("big", "d@example.com", quantity=3).priority


@pytest.mark.django_db
@pytest.mark.postgres
def test_a_buyer_with_a_delivered_order_is_priority_however_the_email_is_written():
    stock_product(10, slug="small", price=100)
    set_priority_amount(0)
    first = checkout("small", "Jane.Doe@gmail.com")
    assert not first.priority
    assert not checkout("small", "jane.doe@gmail.com").priority  # earlier, but not delivered
    OrderFactory(
        product=first.product, email="janedoe+old@googlemail.com", status=OrderStatus.DELIVERED
    )
    Order.objects.filter(email="janedoe+old@googlemail.com").update(
        paid_at=first.created_at, delivered_at=first.created_at
    )
    assert checkout("small", "JANEDOE+again@gmail.com").priority
    assert not checkout("small", "someone.else@gmail.com").priority


@pytest.mark.django_db
@pytest.mark.postgres
def test_payment_route_names_the_priority_queue_only_for_priority_orders():
    product = stock_product(3, slug="route")
    normal = OrderFactory(product=product)
    urgent = OrderFactory(product=product, priority=True)
    queue = priority_queue(celery_app.conf.task_default_queue)
    assert payment_route(completed_event(urgent)) == {"queue": queue}
    assert payment_route(completed_event(normal)) == {}
    unknown = completed_event(normal)
    unknown["data"]["object"]["metadata"]["order_no"] = "KNOSUCHORDER"
    unknown["data"]["object"]["client_reference_id"] = "KNOSUCHORDER"
    assert payment_route(unknown) == {}
    assert payment_route(refund_event("pi_x", amount=990, amount_refunded=990)) == {}


@pytest.fixture
def priority_only_worker():
    """A real worker on Redis that consumes the priority queue and nothing else."""
    queue = f"kami-test-{uuid.uuid4().hex[:8]}"
    env = os.environ | {
        "DJANGO_SETTINGS_MODULE": "shop.settings_test",
        "DATABASE_URL": database_url(connection.settings_dict),
        "REDIS_URL": settings.REDIS_URL,
        "CELERY_TASK_ALWAYS_EAGER": "0",
        "KAMI_TASK_QUEUE": queue,
    }
    log_path = ROOT / "var" / f"{queue}.log"
    log = open(log_path, "w")  # noqa: SIM115 - closed below
    worker = subprocess.Popen(
        celery_worker_command(queue=priority_queue(queue), notify=False, solo=True),
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    previous = (celery_app.conf.task_always_eager, celery_app.conf.task_default_queue)
    celery_app.conf.task_always_eager = False
    celery_app.conf.task_default_queue = queue
    worker.log_path = log_path
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
        with celery_app.connection_for_write() as conn:
            conn.default_channel.queue_purge(queue)  # the normal order's task, never consumed


def wait_for(predicate, timeout: float = 40.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


@pytest.mark.django_db(transaction=True)
@pytest.mark.postgres
@pytest.mark.redis
def test_a_priority_payment_is_delivered_while_the_main_queue_waits(client, priority_only_worker):
    """Nothing consumes the main queue here: a normal order's payment waits in it, and the
    priority order's payment, on its own queue, is delivered by its own worker."""
    product = stock_product(3, slug="lanes")
    normal = OrderFactory(product=product)
    urgent = OrderFactory(product=product, priority=True)
    assert post_event(client, completed_event(normal)).status_code == 200
    assert post_event(client, completed_event(urgent)).status_code == 200
    delivered = wait_for(lambda: Order.objects.get(pk=urgent.pk).status == OrderStatus.DELIVERED)
    assert delivered, priority_only_worker.log_path.read_text()
    assert Order.objects.get(pk=normal.pk).status == OrderStatus.PENDING
    assert PaymentEvent.objects.filter(processed_at__isnull=True).count() == 1  # the normal one
    assert process_payment_event.name in priority_only_worker.log_path.read_text()
