from django.apps import AppConfig
from django.db.models.signals import post_migrate, post_save


def _install_schema(sender, using, **kwargs) -> None:
    from django.db import connections

    from analytics.schema import install

    install(connections[using])


class AnalyticsConfig(AppConfig):
    name = "analytics"
    verbose_name = "Reports"

    def ready(self) -> None:
        from analytics.sources import order_source_record
        from orders.models import Order

        # analytics observes; nothing it watches imports it (pyproject's contracts).
        post_save.connect(order_source_record, sender=Order, dispatch_uid="analytics-source")
        post_migrate.connect(_install_schema, sender=self, dispatch_uid="analytics-schema")
