from django.apps import AppConfig


class RiskrulesConfig(AppConfig):
    name = "riskrules"
    verbose_name = "Risk control"

    def ready(self) -> None:
        # In ready(): the implementation imports models, which wait for the app registry.
        from orders.risk import risk_control_register
        from riskrules import hooks

        # Orders asks risk control through its own seam; this app answers it.
        risk_control_register(hooks)
