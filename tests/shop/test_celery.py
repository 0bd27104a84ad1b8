"""Task routing: the work a buyer waits on and side effects travel on separate queues."""

from __future__ import annotations

import pytest

from shop.celery import SIDE_EFFECT_TASKS, app, notify_queue
from shop.processes import celery_worker_command


def _queue_of(task_name: str) -> str:
    route = app.amqp.router.route({}, task_name, args=(), kwargs={})
    return route["queue"].name


@pytest.mark.parametrize("name", sorted(SIDE_EFFECT_TASKS))
def test_side_effects_go_to_the_notify_queue(name):
    assert _queue_of(name) == notify_queue(app.conf.task_default_queue)


@pytest.mark.parametrize(
    "name",
    [
        "orders.tasks.process_payment_event",
        "orders.tasks.deliver_backorders",
        "orders.tasks.sweep_unprocessed_payment_events",
        "orders.tasks.expire_unpaid_orders",
    ],
)
def test_deliveries_stay_on_the_task_queue(name):
    assert _queue_of(name) == app.conf.task_default_queue


def test_side_effect_tasks_exist():
    app.loader.import_default_modules()
    registered = set(app.tasks)
    assert registered >= SIDE_EFFECT_TASKS


def test_worker_command_consumes_every_queue_unless_told_otherwise():
    every = celery_worker_command(queue="q")
    assert every[every.index("-Q") + 1] == "q,q-priority,q-notify"
    only = celery_worker_command(queue="q", notify=False, pool="threads", concurrency=4)
    assert only[only.index("-Q") + 1] == "q"
    assert "--pool=threads" in only and "--concurrency=4" in only
    with_priority = celery_worker_command(queue="q", notify=False, priority=True)
    assert with_priority[with_priority.index("-Q") + 1] == "q,q-priority"
