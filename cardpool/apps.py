from django.apps import AppConfig


class CardpoolConfig(AppConfig):
    name = "cardpool"
