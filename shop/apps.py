from django.apps import AppConfig


class ShopConfig(AppConfig):
    name = "shop"
    verbose_name = "Shop"

    def ready(self) -> None:
        from django.conf import settings

        from core.log_redaction import register_settings_secrets
        from shop import checks  # noqa: F401 - registers the system checks

        register_settings_secrets(settings)
