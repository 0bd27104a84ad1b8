from django.apps import AppConfig


class CommissionsConfig(AppConfig):
    name = "commissions"

    def ready(self) -> None:
        from commissions.models import CommissionRule, CommissionSettings
        from shop.audit import audit_track

        # Commission rates: the shop defaults and every override. Withdrawal decisions are
        # recorded by the services that make them (``_withdrawals_move``).
        audit_track(CommissionSettings)
        audit_track(CommissionRule)
