from django.conf import settings
from django.http import HttpRequest


def shop_context(request: HttpRequest) -> dict:
    from shop.models import ShopSettings

    return {
        "shop_name": ShopSettings.load().shop_name,
        "payment_provider": settings.PAYMENT_PROVIDER,
    }
