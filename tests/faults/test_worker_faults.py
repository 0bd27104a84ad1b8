"""A worker killed mid-delivery: its task would come back only after the broker's visibility
timeout (600 s; measured 620 s in the issue). The next worker's own sweep delivers it within
seconds instead — and once."""

from __future__ import annotations

import signal
import threading

import pytest
from django.conf import settings
from django.db import connection, connections, transaction

from cardpool.models import CardKey
from orders.models import Delivery, Order, OrderStatus, PaymentEvent
from shop.processes import database_url
from tests.factories import OrderFactory, stock_product
from tests.faults.helpers import lock_waiters, post_webhook
from tests.faults.servers import kami_env, kami_web, kami_worker, wait_for
from tests.stripe_helpers import completed_event

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres, pytest.mark.redis]


def test_a_killed_workers_payment_is_delivered_by_the_next_worker_long_before_redelivery(
    own_redis, run_dir, queue_name
):
    visibility = settings.CELERY_BROKER_TRANSPORT_OPTIONS["visibility_timeout"]
    url = f"{database_url(connection.settings_dict)}?application_name={queue_name}"
    env = kami_env(
        database_url=url, redis_url=own_redis.url, queue=queue_name, mailbox=run_dir / "mail"
    )
    order = OrderFactory(product=stock_product(1, slug="crash"))
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
    with kami_web(env, run_dir / "web.log") as web:
        try:
            with kami_worker(env, run_dir / "first-worker.log") as first:
                assert post_webhook(web.port, completed_event(order)) == 200
                with connection.cursor():
                    assert wait_for(lambda: lock_waiters(connection) > 0, timeout=30)
                first.send_signal(signal.SIGKILL)
                first.wait(10)
        finally:
            release.set()
            holder.join(10)
        assert PaymentEvent.objects.get().processed_at is None  # rolled back with the worker
        with kami_worker(env, run_dir / "second-worker.log"):
            # Far inside the visibility timeout: only the sweep can have done it.
            assert wait_for(
                lambda: Order.objects.get(pk=order.pk).status == OrderStatus.DELIVERED,
                timeout=visibility / 10,
            ), f"logs in {run_dir}"
    assert Delivery.objects.filter(order=order).count() == 1
    assert CardKey.objects.filter(order=order, status="sold").count() == 1
