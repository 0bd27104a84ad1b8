from django.apps import AppConfig


class RiskrulesConfig(AppConfig):
    name = "riskrules"
    verbose_name = "Risk control"
