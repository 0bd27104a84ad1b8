"""Per-endpoint body limits around the key import (issue "Owner security and hardening"): the
import page takes large bodies up to its own ceiling and refuses more before reading them; every
other admin form keeps the 1 MB default (the API's and the webhook's: tests/shop/test_hardening.py,
tests/orders/test_webhook_hardening.py)."""

from __future__ import annotations

import pytest
from django.urls import reverse

from cardpool.admin_views import MAX_UPLOAD_BYTES
from cardpool.models import CardKey, ImportBatch
from tests.factories import ProductFactory

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]


def test_import_over_its_own_limit_is_413_before_the_body_is_read(admin_client):
    product = ProductFactory()
    url = reverse("admin:shop_product_import_keys", args=[product.pk])
    response = admin_client.post(
        url, {"text": "KEY-1\nKEY-2"}, CONTENT_LENGTH=str(MAX_UPLOAD_BYTES + 1)
    )
    assert response.status_code == 413
    assert "larger than 64 MB" in response.content.decode()
    assert not ImportBatch.objects.exists() and not CardKey.objects.exists()


def test_import_up_to_its_limit_is_read_but_other_admin_forms_stay_at_1_mb(admin_client):
    product = ProductFactory()
    paste = "\n".join(f"LIMIT-{i:07d}-{'k' * 40}" for i in range(30_000))  # ~1.5 MB
    assert len(paste) > 1024 * 1024
    change = reverse("admin:shop_product_change", args=[product.pk])
    refused = admin_client.post(change, {"name": "x", "description": paste})
    assert refused.status_code == 413
    imported = admin_client.post(
        reverse("admin:shop_product_import_keys", args=[product.pk]), {"text": paste}
    )
    assert imported.status_code == 302
    assert CardKey.objects.filter(product=product).count() == 30_000
