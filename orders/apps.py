from django.apps import AppConfig


class OrdersConfig(AppConfig):
    name = "orders"

    def ready(self) -> None:
        # Imported in ready(), not at module level: receivers load models and tasks, which
        # must wait for the app registry.
        from cardpool.signals import keys_imported
        from orders.receivers import serve_backorders_on_restock

        keys_imported.connect(serve_backorders_on_restock, dispatch_uid="orders-serve-backorders")
