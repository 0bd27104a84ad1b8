"""Start-up warnings for production settings that work but quietly do the wrong thing."""

from __future__ import annotations

from django.conf import settings
from django.core.checks import Tags, Warning, register


@register(Tags.security, deploy=False)
def production_settings(app_configs, **kwargs) -> list[Warning]:
    if settings.DEBUG or settings.TESTING:
        return []
    warnings = []
    if not settings.REDIS_URL:
        warnings.append(
            Warning(
                "DEBUG is off but REDIS_URL is not set: tasks run inside web requests and no "
                "worker expires unpaid orders or sweeps the payment inbox.",
                hint="Set REDIS_URL and run a Celery worker and beat (see docker-compose.yml).",
                id="kami.W001",
            )
        )
    if settings.EMAIL_BACKEND.endswith(("console.EmailBackend", "locmem.EmailBackend")):
        warnings.append(
            Warning(
                "DEBUG is off but EMAIL_URL sends mail to the console: delivery emails carrying "
                "card keys would land in the logs instead of the buyer's inbox.",
                hint="Set EMAIL_URL, e.g. smtp+tls://user:password@smtp.example.com:587.",
                id="kami.W002",
            )
        )
    if "," in settings.CARDKEY_ENCRYPTION_KEY and not settings.CARDKEY_FINGERPRINT_KEY:
        warnings.append(
            Warning(
                "Several CARDKEY_ENCRYPTION_KEY values but no CARDKEY_FINGERPRINT_KEY: "
                "dropping the last-listed key would change every fingerprint and break "
                "duplicate detection.",
                hint="Set CARDKEY_FINGERPRINT_KEY to the original (last-listed) key's value.",
                id="kami.W003",
            )
        )
    return warnings
