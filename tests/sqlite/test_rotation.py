"""``manage.py rotate_card_keys`` on SQLite: the compare-and-swap path without row locks."""

from __future__ import annotations

import io

import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command

from cardpool.crypto import decrypt_secret
from cardpool.models import CardKey
from cardpool.services import keys_import
from tests.factories import ProductFactory

pytestmark = pytest.mark.django_db(transaction=True)


def test_rotation_reencrypts_once_and_the_old_key_can_go(settings):
    old = settings.CARDKEY_ENCRYPTION_KEY
    settings.CARDKEY_FINGERPRINT_KEY = old.split(",")[-1].strip()
    keys_import(product=ProductFactory(), text="\n".join(f"LITE-{i}" for i in range(7)))
    new = Fernet.generate_key().decode()
    settings.CARDKEY_ENCRYPTION_KEY = f"{new},{old}"

    out = io.StringIO()
    call_command("rotate_card_keys", batch_size=3, stdout=out)
    call_command("rotate_card_keys", stdout=out)
    assert out.getvalue().splitlines() == [
        "re-encrypted 7 keys (0 already current)",
        "re-encrypted 0 keys (7 already current)",
    ]
    settings.CARDKEY_ENCRYPTION_KEY = new
    secrets = CardKey.objects.order_by("pk").values_list("secret", flat=True)
    assert [decrypt_secret(s) for s in secrets] == [f"LITE-{i}" for i in range(7)]
