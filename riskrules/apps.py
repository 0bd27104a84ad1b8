from django.apps import AppConfig


class RiskrulesConfig(AppConfig):
    name = "riskrules"
