from django.apps import AppConfig


class OrdersConfig(AppConfig):
    name = "orders"

    def ready(self) -> None:
        from cardpool.signals import keys_imported
        from orders.receivers import serve_backorders_on_restock

        keys_imported.connect(serve_backorders_on_restock, dispatch_uid="orders-serve-backorders")
