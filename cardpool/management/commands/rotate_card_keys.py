"""``manage.py rotate_card_keys``: re-encrypt the key pool under the first encryption key.

Safe to run while the shop sells (``cardpool.rotation``) and to run again: rows already under
the first key are left alone, and a run that stopped early (``--max-keys``, rows busy) is
finished by the next. It refuses to start while the fingerprint key would move when the old
encryption key is dropped (README, "Key rotation", step 1): de-duplication would then break
silently for every key already in the pool.
"""

from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from cardpool.rotation import BATCH_SIZE, keys_reencrypt


class Command(BaseCommand):
    help = "Re-encrypt all card keys with the first key in CARDKEY_ENCRYPTION_KEY."

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--batch-size",
            type=int,
            default=BATCH_SIZE,
            help=f"Keys per write (default {BATCH_SIZE}); each batch locks its rows for one "
            "statement.",
        )
        parser.add_argument(
            "--max-keys",
            type=int,
            default=None,
            help="Stop after re-encrypting this many (rotate a large pool in slices).",
        )

    def handle(self, *args, batch_size: int, max_keys: int | None, **options) -> None:
        keys = [k for k in settings.CARDKEY_ENCRYPTION_KEY.split(",") if k.strip()]
        if len(keys) > 1 and not settings.CARDKEY_FINGERPRINT_KEY:
            raise CommandError(
                "CARDKEY_FINGERPRINT_KEY is not set, so fingerprints derive from the last-listed "
                "encryption key and would change when you drop it (duplicate keys would then "
                "import unnoticed). Set CARDKEY_FINGERPRINT_KEY to exactly the value of the "
                "last key in CARDKEY_ENCRYPTION_KEY, restart, and run this again."
            )
        if batch_size < 1 or (max_keys is not None and max_keys < 0):
            raise CommandError("--batch-size must be at least 1 and --max-keys not negative.")
        report = keys_reencrypt(batch_size=batch_size, max_keys=max_keys)
        self.stdout.write(str(report))
        if report.remaining and max_keys is None:
            raise CommandError(
                f"{report.remaining} keys were busy throughout and are still under an older "
                "key: run rotate_card_keys again before dropping it."
            )
