from django.conf import settings
from django.http import HttpRequest

from shop.models import ShopSettings


def shop_context(request: HttpRequest) -> dict:
    return {
        "shop_name": ShopSettings.load().shop_name,
        "payment_provider": settings.PAYMENT_PROVIDER,
    }
