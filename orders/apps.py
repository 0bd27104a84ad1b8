from django.apps import AppConfig


class OrdersConfig(AppConfig):
    name = "orders"

    def ready(self) -> None:
        # Imported in ready(), not at module level: receivers load models and tasks, which
        # must wait for the app registry.
        from cardpool.signals import keys_imported
        from orders.notices.models import OwnerNotifier
        from orders.outbox.content import RENDERERS
        from orders.receivers import notify_subscribers_on_restock, serve_backorders_on_restock
        from orders.support.content import RENDERERS as SUPPORT_RENDERERS
        from shop.audit import audit_track

        keys_imported.connect(serve_backorders_on_restock, dispatch_uid="orders-serve-backorders")
        keys_imported.connect(
            notify_subscribers_on_restock, dispatch_uid="orders-notify-restock-subscribers"
        )
        RENDERERS.update(SUPPORT_RENDERERS)
        # Bot tokens and robot URLs are credentials: the audit log says they changed, not what to.
        audit_track(OwnerNotifier, secret=["secret", "target"])
