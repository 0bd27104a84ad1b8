"""``manage.py rotate_card_keys``: re-encrypt every key under the first encryption key."""

from django.core.management.base import BaseCommand

from cardpool.services import keys_reencrypt


class Command(BaseCommand):
    help = "Re-encrypt all card keys with the first key in CARDKEY_ENCRYPTION_KEY."

    def handle(self, *args, **options) -> None:
        self.stdout.write(f"re-encrypted {keys_reencrypt()} keys")
