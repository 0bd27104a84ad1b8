"""PostgreSQL restarted and stopped under a running Kami — a cluster of the test's own
(``initdb``/``pg_ctl`` on a free port), never the machine's shared server.

Issue "Every channel, pushed live, and nothing lost": after a PostgreSQL restart the email was
sent, recording it failed, and the retry sent it again; an outage answered plain 500.
"""

from __future__ import annotations

import json
from decimal import Decimal
from types import SimpleNamespace

import pytest

from orders.outbox.channels import message_id
from orders.payments.stripe_events import build_event, checkout_session_object
from tests.faults.helpers import post_webhook
from tests.faults.mailbox import mailbox
from tests.faults.servers import (
    OwnPostgres,
    http_request,
    kami_env,
    kami_web,
    kami_worker,
    manage,
    post_json,
    wait_for,
)

pytestmark = [pytest.mark.postgres, pytest.mark.redis]


@pytest.fixture(scope="module")
def kami_database(own_postgres: OwnPostgres, tmp_path_factory) -> OwnPostgres:
    """The own cluster, migrated and seeded with the demo shop (``make run``'s catalog)."""
    box = tmp_path_factory.mktemp("seed-mail")
    env = kami_env(database_url=own_postgres.url(), redis_url="", queue="seed", mailbox=box)
    manage(env, "migrate", "--noinput")
    manage(env, "seed_demo")
    return own_postgres


def paid_event(created: dict) -> dict:
    """The Stripe event paying an order the API just created (its answer is all we know)."""
    order = SimpleNamespace(
        order_no=created["order_no"],
        amount=int(Decimal(created["amount"]) * 100),
        currency=created["currency"],
        email="buyer@example.com",
        checkout_session_id="",
    )
    return build_event("checkout.session.completed", checkout_session_object(order))


def rows(db: OwnPostgres, sql: str, *params):
    try:
        return db.query(sql, params)
    except Exception:  # the server is restarting: ask again
        return None


def test_a_restart_between_sending_and_recording_does_not_send_the_email_twice(
    kami_database, own_redis, run_dir, queue_name
):
    box = run_dir / "mail"
    env = kami_env(
        database_url=kami_database.url(),
        redis_url=own_redis.url,
        queue=queue_name,
        mailbox=box,
        KAMI_FAULT_RESTART_AFTER_SEND=json.dumps(kami_database.restart_command()),
    )
    with kami_web(env, run_dir / "web.log") as web, kami_worker(env, run_dir / "worker.log"):
        status, created = post_json(
            web.port,
            "/api/v1/orders",
            {"product": "steam-wallet-10", "quantity": 1, "email": "buyer@example.com"},
        )
        assert status == 201, created
        assert post_webhook(web.port, paid_event(created)) == 200
        sent = "SELECT m.status, m.idempotency_key FROM orders_outboxmessage m "
        sent += "JOIN orders_order o ON o.id = m.order_id WHERE o.order_no = %s"
        assert wait_for(
            lambda: (
                (found := rows(kami_database, sent, created["order_no"])) and found[0][0] == "sent"
            ),
            timeout=90,
        ), f"logs in {run_dir}"
        # Whatever a retry might do, it has had the time to do it.
        wait_for(lambda: len(mailbox(box)) > 1, timeout=5)
    assert (box / "restarted").exists()  # PostgreSQL really restarted right after the send
    (email,) = mailbox(box)
    ((_, key),) = rows(kami_database, sent, created["order_no"])
    assert email["Message-ID"] == message_id(key) and created["order_no"] in email["Subject"]
    attempts = rows(
        kami_database,
        "SELECT a.outcome FROM orders_messageattempt a JOIN orders_order o ON o.id = a.order_id "
        "WHERE o.order_no = %s ORDER BY a.number",
        created["order_no"],
    )
    assert attempts == [("sent",)]
    emailed = rows(
        kami_database,
        "SELECT d.emailed_at IS NOT NULL FROM orders_delivery d "
        "JOIN orders_order o ON o.id = d.order_id WHERE o.order_no = %s",
        created["order_no"],
    )
    assert emailed == [(True,)]


def test_an_outage_answers_503_with_retry_after_and_the_shop_comes_back(
    kami_database, run_dir, queue_name
):
    env = kami_env(
        database_url=kami_database.url(), redis_url="", queue=queue_name, mailbox=run_dir / "mail"
    )
    with kami_web(env, run_dir / "web.log") as web:
        assert http_request(web.port, "GET", "/api/v1/products")[0] == 200
        kami_database.stop()
        try:
            status, headers, body = http_request(web.port, "GET", "/api/v1/products")
            assert status == 503 and headers["Retry-After"].isdigit()
            assert json.loads(body)["code"] == "unavailable"
            status, headers, body = http_request(
                web.port,
                "POST",
                "/api/v1/orders/K1/lookup",
                b'{"email": "a@example.com"}',
                {"Content-Type": "application/json"},
            )
            assert status == 503 and json.loads(body)["code"] == "unavailable"
            status, headers, body = http_request(web.port, "GET", "/")
            assert status == 503 and headers["Content-Type"].startswith("text/html")
            assert b"Back in a moment" in body and headers["Retry-After"].isdigit()
            status, headers, body = http_request(web.port, "GET", "/healthz")
            assert status == 503
            status = post_webhook(
                web.port, build_event("checkout.session.completed", {"id": "cs_1"})
            )
            assert status == 503  # not stored: Stripe retries it later
        finally:
            kami_database.start()
        assert wait_for(lambda: http_request(web.port, "GET", "/api/v1/products")[0] == 200)
