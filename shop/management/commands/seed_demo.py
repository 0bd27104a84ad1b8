"""``manage.py seed_demo``: the demo shop, idempotent (safe to run on every ``make run``)."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from cardpool.services import keys_import
from commissions.models import CommissionSettings, Promoter
from orders.stock import product_stock
from shop.models import Category, Product, ShopSettings

CATEGORIES = [
    ("games", "Game keys", 1),
    ("software", "Software licences", 2),
    ("gift-cards", "Gift cards", 3),
]
PRODUCTS = [
    # slug, name, category, price (minor units), currency, description, key prefix, keys
    (
        "steam-wallet-10",
        "Steam Wallet 10 USD",
        "gift-cards",
        1050,
        "USD",
        "A 10 USD Steam Wallet code. Redeem in the Steam client under Games → Redeem.",
        "STEAM",
        40,
    ),
    (
        "windows-11-pro",
        "Windows 11 Pro licence",
        "software",
        1990,
        "USD",
        "A retail licence key for one PC. Activate under Settings → System → Activation.",
        "W11P",
        25,
    ),
    (
        "indie-bundle",
        "Indie Game Bundle",
        "games",
        499,
        "USD",
        "Five indie games, one key each platform store accepts.",
        "INDIE",
        60,
    ),
    (
        "netflix-gift-25",
        "Netflix Gift Card 25 USD",
        "gift-cards",
        2500,
        "USD",
        "A 25 USD Netflix gift card code.",
        "NFLX",
        4,
    ),
]
DEMO_KEYS_MIN = 3


class Command(BaseCommand):
    help = "Create (or top up) the demo shop: categories, products, keys, owner and promoters."

    def handle(self, *args, **options) -> None:
        if not settings.DEBUG:
            raise CommandError("seed_demo creates well-known logins: it only runs with DEBUG on.")
        with transaction.atomic():
            ShopSettings.load()  # create the defaults once; never overwrite the owner's edits
            CommissionSettings.load()  # likewise: L1 10%, L2 3%, hold 7 days, minimum 10.00
            categories = {}
            for slug, name, order in CATEGORIES:
                categories[slug], _ = Category.objects.get_or_create(
                    slug=slug, defaults={"name": name, "sort_order": order}
                )
            products = []
            for sort, (slug, name, cat, price, cur, desc, prefix, count) in enumerate(PRODUCTS):
                product, _ = Product.objects.get_or_create(
                    slug=slug,
                    defaults={
                        "name": name,
                        "category": categories[cat],
                        "price": price,
                        "currency": cur,
                        "description": desc,
                        "sort_order": sort,
                        "low_stock_threshold": 5,
                    },
                )
                products.append((product, prefix, count))
            users = self._users()
        for product, prefix, count in products:
            if product_stock(product.pk) < DEMO_KEYS_MIN:
                start = product.keys.count()
                text = "\n".join(
                    f"{prefix}-DEMO-{start + i:05d}-{product.pk:03d}" for i in range(count)
                )
                report = keys_import(product=product, text=text)
                self.stdout.write(f"{product.slug}: {report}")
        self.stdout.write(self.style.SUCCESS("Demo shop ready."))
        for username, role in users:
            self.stdout.write(f"  {role:<28} {username} / {username}")

    def _users(self) -> list[tuple[str, str]]:
        User = get_user_model()
        admin, created = User.objects.get_or_create(
            username="admin",
            defaults={"is_staff": True, "is_superuser": True, "email": "admin@example.com"},
        )
        if created:
            admin.set_password("admin")
            admin.save()
        promoters = [("promoter", "DEMO", None), ("promoter2", "DEMO2", "DEMO")]
        for username, code, upline_code in promoters:
            user, created = User.objects.get_or_create(
                username=username, defaults={"email": f"{username}@example.com"}
            )
            if created:
                user.set_password(username)
                user.save()
            upline = Promoter.objects.get(code=upline_code) if upline_code else None
            Promoter.objects.get_or_create(user=user, defaults={"code": code, "upline": upline})
        return [
            ("admin", "Shop owner (/admin/)"),
            ("promoter", "Promoter, code DEMO"),
            ("promoter2", "Promoter DEMO2 (upline DEMO)"),
        ]
