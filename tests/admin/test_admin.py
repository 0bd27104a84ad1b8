"""The owner's admin: stock columns, key import (form, file, XHR), secrecy of keys, orders."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.conf import settings
from django.contrib.auth.models import Permission, User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from cardpool.crypto import decrypt_secret
from cardpool.models import CardKey, ImportBatch
from orders.models import Order, OrderStatus, PaymentEvent
from shop.models import ShopSettings
from tests.factories import OrderFactory, ProductFactory, stock_product
from tests.html_audit import watch_csp_violations

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]

XHR = {"X-Requested-With": "XMLHttpRequest"}


def import_url(product) -> str:
    return reverse("admin:shop_product_import_keys", args=[product.pk])


def staff_client(*perms: str) -> Client:
    """A logged-in staff user (not superuser) holding exactly ``perms`` ("app.codename")."""
    user = User.objects.create_user(
        "support", "support@example.com", "s3cret-pass-1", is_staff=True
    )
    for perm in perms:
        app_label, codename = perm.split(".")
        user.user_permissions.add(
            Permission.objects.get(content_type__app_label=app_label, codename=codename)
        )
    client = Client()
    client.force_login(user)
    return client


def delivered_order(product, plaintext: str = "SECRET-KEY-0001") -> Order:
    from cardpool.crypto import encrypt_secret, fingerprint

    now = timezone.now()
    order = OrderFactory(
        product=product, status=OrderStatus.DELIVERED, paid_at=now, delivered_at=now
    )
    CardKey.objects.create(
        product=product,
        secret=encrypt_secret(plaintext),
        fingerprint=fingerprint(plaintext),
        status=CardKey.Status.SOLD,
        order=order,
        slot=1,
        sold_at=now,
    )
    return order


# --- Product list -------------------------------------------------------------------------


def test_product_changelist_shows_stock_columns(admin_client):
    product = stock_product(7, name="Seven Keys", low_stock_threshold=1)
    OrderFactory(product=product, quantity=2)  # a live hold claims 2
    delivered_order(product)  # one sold key

    response = admin_client.get(reverse("admin:shop_product_changelist"))

    assert response.status_code == 200
    row = response.context["cl"].result_list.get(pk=product.pk)
    assert (row.available_keys, row.claimed, row.stock, row.sold_count) == (7, 2, 5, 1)
    html = response.content.decode()
    assert 'class="field-stock_display">5<' in html
    assert 'class="field-sold_display">1<' in html
    assert import_url(product) in html


def test_product_changelist_highlights_low_stock(admin_client):
    stock_product(2, low_stock_threshold=5)
    html = admin_client.get(reverse("admin:shop_product_changelist")).content.decode()
    assert 'class="field-stock_display"><strong class="kami-low-stock">2</strong>' in html


def test_product_changelist_does_not_query_per_row(admin_client, django_assert_max_num_queries):
    stock_product(3)
    url = reverse("admin:shop_product_changelist")
    admin_client.get(url)  # warm up session/content-type caches
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as one:
        admin_client.get(url)
    for _ in range(5):
        stock_product(4)
    with django_assert_max_num_queries(len(one.captured_queries)):
        admin_client.get(url)


def test_shop_settings_is_a_singleton(admin_client):
    settings_row = ShopSettings.load()

    response = admin_client.get(reverse("admin:shop_shopsettings_changelist"))
    assert response.status_code == 302
    assert response["Location"] == reverse("admin:shop_shopsettings_change", args=[settings_row.pk])
    assert admin_client.get(reverse("admin:shop_shopsettings_add")).status_code == 403
    assert (
        admin_client.get(
            reverse("admin:shop_shopsettings_delete", args=[settings_row.pk])
        ).status_code
        == 403
    )


# --- Key import -----------------------------------------------------------------------------


def test_import_page_renders_with_form(admin_client):
    product = ProductFactory()
    response = admin_client.get(import_url(product))
    assert response.status_code == 200
    html = response.content.decode()
    assert 'id="kami-import-form"' in html
    assert "admin/kami-import.js" in html
    assert 'enctype="multipart/form-data"' in html


def test_import_via_textarea_reports_and_encrypts(admin_client, admin_user):
    product = ProductFactory()
    CardKey.objects.create(
        product=product,
        secret=b"x",
        fingerprint=__import__("cardpool.crypto", fromlist=["fingerprint"]).fingerprint("OLD-1"),
    )
    text = "AAA-111\r\nBBB-222\r\n\r\nAAA-111\r\nOLD-1\r\n"

    response = admin_client.post(import_url(product), {"text": text}, follow=True)

    assert response.status_code == 200
    assert "imported 2, duplicates 2, skipped 1" in response.content.decode()
    new_keys = CardKey.objects.filter(product=product, batch__isnull=False)
    assert new_keys.count() == 2
    for key in new_keys:
        raw = bytes(key.secret)
        assert b"AAA-111" not in raw and b"BBB-222" not in raw
    assert sorted(decrypt_secret(k.secret) for k in new_keys) == ["AAA-111", "BBB-222"]
    batch = ImportBatch.objects.get(product=product)
    assert (batch.source, batch.created_by, batch.imported) == ("admin", admin_user, 2)


def test_import_via_txt_file(admin_client):
    product = ProductFactory()
    upload = SimpleUploadedFile("keys.txt", b"K-1\nK-2\nK-3\n\n", content_type="text/plain")

    response = admin_client.post(import_url(product), {"file": upload}, follow=True)

    assert "imported 3, duplicates 0, skipped 1" in response.content.decode()
    assert CardKey.objects.filter(product=product, status="available").count() == 3


def test_import_via_csv_file_with_bom(admin_client):
    product = ProductFactory()
    content = "\ufeffid,key,note\n1,C-1,a\n2,C-2,b\n3,C-1,dup\n4,,empty\n".encode()
    upload = SimpleUploadedFile("keys.csv", content, content_type="text/csv")

    response = admin_client.post(import_url(product), {"file": upload}, follow=True)

    assert "imported 2, duplicates 1, skipped 1" in response.content.decode()
    keys = CardKey.objects.filter(product=product)
    assert sorted(decrypt_secret(k.secret) for k in keys) == ["C-1", "C-2"]
    assert all(b"C-1" not in bytes(k.secret) for k in keys)


def test_import_xhr_answers_json_report(admin_client):
    product = stock_product(1)
    upload = SimpleUploadedFile("keys.txt", b"X-1\nX-2\n", content_type="text/plain")

    response = admin_client.post(import_url(product), {"file": upload}, headers=XHR)

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    data = response.json()
    assert data["ok"] is True
    assert data["report"] == {
        "batch_id": ImportBatch.objects.get(product=product).pk,
        "imported": 2,
        "duplicates": 0,
        "skipped": 0,
    }
    assert "imported 2, duplicates 0, skipped 0" in data["message"]
    assert data["batch"]["created_by"] == "admin" and data["batch"]["source"] == "Admin"
    assert data["stock"] == {"available_keys": 3, "claimed": 0, "stock": 3}


def test_import_csv_without_key_column_changes_nothing(admin_client):
    product = ProductFactory()
    upload = SimpleUploadedFile("keys.csv", b"id,value\n1,A\n", content_type="text/csv")

    response = admin_client.post(import_url(product), {"file": upload}, headers=XHR)

    assert response.status_code == 400
    data = response.json()
    assert data["ok"] is False
    assert "no key column" in data["message"]
    assert not CardKey.objects.filter(product=product).exists()
    assert not ImportBatch.objects.exists()


def test_import_csv_without_key_column_html(admin_client):
    product = ProductFactory()
    upload = SimpleUploadedFile("keys.csv", b"id,value\n1,A\n", content_type="text/csv")

    response = admin_client.post(import_url(product), {"file": upload})

    assert response.status_code == 200
    html = response.content.decode()
    assert "Nothing was imported" in html and "no key column" in html
    assert not ImportBatch.objects.exists()


@pytest.mark.parametrize(
    ("data", "error"),
    [
        ({}, "Paste some keys or choose a file"),
        ({"text": "  \n  "}, "Paste some keys or choose a file"),
        ({"file": "latin1"}, "is not UTF-8 text"),
        ({"file": "utf16"}, "UTF-16"),
        ({"file": "empty"}, "empty"),
        ({"file": "txt", "text": "A"}, "not both"),
    ],
)
def test_import_bad_input_is_refused(admin_client, data, error):
    product = ProductFactory()
    files = {
        "latin1": SimpleUploadedFile("k.txt", "café-clé\n".encode("latin-1")),
        "utf16": SimpleUploadedFile("k.txt", "KEY-1\nKEY-2\n".encode("utf-16-le")),
        "empty": SimpleUploadedFile("k.txt", b""),
        "txt": SimpleUploadedFile("k.txt", b"B\n"),
    }
    if "file" in data:
        data = {**data, "file": files[data["file"]]}

    response = admin_client.post(import_url(product), data, headers=XHR)

    assert response.status_code == 400
    assert error in response.json()["message"]
    assert not CardKey.objects.exists()
    assert not ImportBatch.objects.exists()


def test_import_requires_add_cardkey_permission():
    product = ProductFactory()
    client = staff_client("shop.view_product", "shop.change_product")

    assert client.get(import_url(product)).status_code == 403
    response = client.post(import_url(product), {"text": "A\n"}, headers=XHR)
    assert response.status_code == 403
    assert not CardKey.objects.exists()
    # ...and the list does not offer a button that would only lead to a 403.
    html = client.get(reverse("admin:shop_product_changelist")).content.decode()
    assert import_url(product) not in html


def test_import_allowed_with_add_cardkey_permission():
    product = ProductFactory()
    client = staff_client("cardpool.add_cardkey")

    response = client.post(import_url(product), {"text": "A\nB\n"}, headers=XHR)

    assert response.json()["report"]["imported"] == 2


# --- Card keys ----------------------------------------------------------------------------


def test_cardkey_pages_never_show_secret_or_fingerprint(admin_client):
    product = ProductFactory()
    admin_client.post(import_url(product), {"text": "PLAIN-SECRET-42\n"})
    key = CardKey.objects.get(product=product)

    for url in (
        reverse("admin:cardpool_cardkey_changelist"),
        reverse("admin:cardpool_cardkey_change", args=[key.pk]),
    ):
        html = admin_client.get(url).content.decode()
        assert "PLAIN-SECRET-42" not in html
        assert key.fingerprint not in html
        assert bytes(key.secret).decode() not in html
        assert 'name="secret"' not in html and 'name="fingerprint"' not in html
    assert admin_client.get(reverse("admin:cardpool_cardkey_add")).status_code == 403
    assert (
        admin_client.get(reverse("admin:cardpool_cardkey_delete", args=[key.pk])).status_code == 403
    )


def test_cardkey_search_by_plaintext_finds_by_fingerprint(admin_client):
    product = stock_product(3)
    response = admin_client.get(
        reverse("admin:cardpool_cardkey_changelist"), {"q": f"{product.slug}-KEY-1"}
    )
    assert [k.pk for k in response.context["cl"].result_list] == [
        CardKey.objects.get(
            fingerprint=__import__("cardpool.crypto", fromlist=["f"]).fingerprint(
                f"{product.slug}-KEY-1"
            )
        ).pk
    ]


def test_void_action_voids_only_available_keys(admin_client):
    product = stock_product(2)
    order = delivered_order(product)
    ids = list(CardKey.objects.filter(product=product).values_list("pk", flat=True))

    response = admin_client.post(
        reverse("admin:cardpool_cardkey_changelist"),
        {"action": "void_selected", "_selected_action": ids},
        follow=True,
    )

    assert "Voided 2 keys." in response.content.decode()
    assert CardKey.objects.filter(product=product, status="void").count() == 2
    assert CardKey.objects.get(order=order).status == CardKey.Status.SOLD


# --- Orders -------------------------------------------------------------------------------


def test_order_change_page_never_shows_keys_not_even_to_the_owner(admin_client):
    """Keys reach an admin page only through the owner's recorded reveal
    (``tests/admin/test_key_reveal.py``); the order page offers the reveal, to the owner."""
    order = delivered_order(ProductFactory(), "TOP-SECRET-KEY-77")
    url = reverse("admin:orders_order_change", args=[order.pk])
    reveal_url = reverse("admin:orders_order_reveal_keys", args=[order.pk])

    owner_html = admin_client.get(url).content.decode()
    assert "TOP-SECRET-KEY-77" not in owner_html
    assert "1 key delivered" in owner_html and reveal_url in owner_html

    support = staff_client("orders.view_order")
    response = support.get(url)
    assert response.status_code == 200
    html = response.content.decode()
    assert order.order_no in html
    assert "TOP-SECRET-KEY-77" not in html
    assert "hidden" in html
    assert ">Reveal keys<" not in html  # the owner's button only


def test_order_change_page_is_read_only_with_inlines(admin_client):
    order = delivered_order(ProductFactory(price=1250, currency="EUR"))
    PaymentEvent.objects.create(
        provider="stripe",
        event_id="evt_admin_1",
        type="checkout.session.completed",
        payload={"id": "evt_admin_1"},
        order=order,
        last_error="boom",
    )
    from orders.events import event_commission_skipped

    event_commission_skipped(order, reason="hello owner")
    url = reverse("admin:orders_order_change", args=[order.pk])

    response = admin_client.get(url)

    html = response.content.decode()
    assert "12.50 EUR" in html
    assert "No commissions posted" in html and "hello owner" in html
    assert "evt_admin_1" in html
    assert 'name="_save"' not in html  # nothing to save: orders change through services
    before = Order.objects.get(pk=order.pk).status
    admin_client.post(url, {"status": OrderStatus.REFUNDED})
    assert Order.objects.get(pk=order.pk).status == before
    delete_url = reverse("admin:orders_order_delete", args=[order.pk])
    assert admin_client.get(delete_url).status_code == 403


def test_order_changelist_filter_by_status_and_amount_column(admin_client):
    product = ProductFactory(price=990, currency="USD")
    pending = OrderFactory(product=product, quantity=2)
    delivered = delivered_order(product)

    response = admin_client.get(
        reverse("admin:orders_order_changelist"), {"status__exact": OrderStatus.DELIVERED}
    )

    assert [o.pk for o in response.context["cl"].result_list] == [delivered.pk]
    html = response.content.decode()
    assert delivered.order_no in html and pending.order_no not in html
    all_html = admin_client.get(reverse("admin:orders_order_changelist")).content.decode()
    assert "19.80 USD" in all_html


def test_order_changelist_search_by_email(admin_client):
    wanted = OrderFactory(email="findme@example.com")
    other = OrderFactory()
    response = admin_client.get(reverse("admin:orders_order_changelist"), {"q": "findme@"})
    assert [o.pk for o in response.context["cl"].result_list] == [wanted.pk]
    assert other.order_no not in response.content.decode()


# --- Payment events -----------------------------------------------------------------------


def test_payment_event_filter_and_reprocess_action(admin_client, monkeypatch):
    done = PaymentEvent.objects.create(
        provider="stripe", event_id="evt_done", type="x", payload={}, processed_at=timezone.now()
    )
    waiting = PaymentEvent.objects.create(
        provider="stripe", event_id="evt_waiting", type="x", payload={}
    )
    PaymentEvent.objects.filter(pk=waiting.pk).update(
        received_at=timezone.now() - timedelta(hours=1)
    )
    url = reverse("admin:orders_paymentevent_changelist")

    response = admin_client.get(url, {"processed": "no"})
    assert [e.pk for e in response.context["cl"].result_list] == [waiting.pk]

    queued: list[int] = []
    monkeypatch.setattr("orders.admin_inbox.process_payment_event.delay", queued.append)
    response = admin_client.post(
        url,
        {"action": "reprocess_selected", "_selected_action": [done.pk, waiting.pk]},
        follow=True,
    )
    assert queued == [waiting.pk]
    assert "Queued 1 event for processing. 1 already processed" in response.content.decode()
    assert (
        admin_client.get(reverse("admin:orders_paymentevent_delete", args=[done.pk])).status_code
        == 403
    )


def test_reprocess_action_refuses_an_event_whose_stored_body_no_longer_verifies(
    admin_client, monkeypatch
):
    from orders.payments.stripe_events import encode, sign_payload

    def stored(event_id: str, tamper: bool) -> PaymentEvent:
        body = encode({"id": event_id, "type": "x", "data": {"object": {}}})
        signature = sign_payload(body, settings.STRIPE_WEBHOOK_SECRET)
        return PaymentEvent.objects.create(
            provider="stripe",
            event_id=event_id,
            type="x",
            payload={},
            body=body.replace(b'"x"', b'"y"') if tamper else body,
            headers={"Stripe-Signature": signature},
        )

    good, altered = stored("evt_good", False), stored("evt_altered", True)
    queued: list[int] = []
    monkeypatch.setattr("orders.admin_inbox.process_payment_event.delay", queued.append)
    url = reverse("admin:orders_paymentevent_changelist")
    response = admin_client.post(
        url,
        {"action": "reprocess_selected", "_selected_action": [good.pk, altered.pk]},
        follow=True,
    )
    assert queued == [good.pk]
    assert "signature no longer valid: evt_altered" in response.content.decode()
    page = admin_client.get(reverse("admin:orders_paymentevent_change", args=[altered.pk]))
    assert "INVALID" in page.content.decode()


# --- The upload progress UI, in a real browser ------------------------------------------

# Records every state the status line goes through, so the test can see "Uploading…" and
# "Processing…" even though both pass in a blink on localhost.
RECORD_STATUS = """
document.addEventListener("DOMContentLoaded", () => {
  window.__kamiStates = [];
  const text = document.getElementById("kami-import-status-text");
  if (!text) return;
  new MutationObserver(() => window.__kamiStates.push(text.textContent))
    .observe(text, {childList: true, characterData: true, subtree: true});
});
"""


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_import_page_uploads_with_progress_in_browser(live_server, chromium_browser, tmp_path):
    product = ProductFactory()
    owner = User.objects.create_superuser("owner", "owner@example.com", "owner-pass-123")
    client = Client()
    client.force_login(owner)
    keys_file = tmp_path / "keys.txt"
    keys_file.write_text("".join(f"BROWSER-{i:06d}\n" for i in range(20_000)) + "BROWSER-000001\n")
    errors: list[str] = []

    context = chromium_browser.new_context()
    csp_violations = watch_csp_violations(context)
    try:
        context.add_cookies(
            [
                {
                    "name": "sessionid",
                    "value": client.cookies["sessionid"].value,
                    "url": live_server.url,
                }
            ]
        )
        page = context.new_page()
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.add_init_script(RECORD_STATUS)
        page.goto(live_server.url + import_url(product))
        page.set_input_files("#id_file", str(keys_file))
        page.click("#kami-import-form [type=submit]")
        result = page.wait_for_selector("#kami-import-result li.success", timeout=60_000)
        message = result.text_content()
        states = page.evaluate("window.__kamiStates")
        stock = page.text_content('[data-stock="stock"]')
        recent_row = page.inner_text("#kami-recent-imports tbody tr")
        still_on_page = page.url
    finally:
        context.close()

    assert not errors
    assert not csp_violations
    assert "imported 20000, duplicates 1, skipped 0" in message
    assert any(s.startswith("Uploading") for s in states) and "Processing…" in states
    assert stock == "20000"
    assert "20000" in recent_row and "owner" in recent_row
    assert still_on_page.endswith(import_url(product))  # answered in place, no page load
    assert CardKey.objects.filter(product=product).count() == 20_000
