from django.apps import AppConfig


class RiskrulesConfig(AppConfig):
    name = "riskrules"
    verbose_name = "Risk control"

    def ready(self) -> None:
        # In ready(): the implementation imports models, which wait for the app registry.
        from orders.risk import risk_control_register
        from riskrules import hooks
        from riskrules.models import BlocklistEntry, RiskRule, RiskSettings
        from shop.audit import audit_track

        # Orders asks risk control through its own seam; this app answers it.
        risk_control_register(hooks)
        # Risk settings in the audit log: the shop-wide knobs, the rules and the blocklist.
        audit_track(RiskSettings)
        audit_track(RiskRule)
        audit_track(BlocklistEntry)
