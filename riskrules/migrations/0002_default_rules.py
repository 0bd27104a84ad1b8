"""Seed the default risk rules, so risk control is on from the first install.

On: the blocklist (empty until the owner adds entries), same IP + product more than 3 orders
in 10 minutes → block, and an order over 3 × the product's 7-day average order → hold.
Seeded but off, for the owner to switch on: a global quantity cap, disposable email domains and
a per-email velocity flag. Reversible: the reverse removes exactly these rules by name.
"""

from django.db import migrations

# Plain data (no models), shared with ``riskrules.services.rules_seed_defaults`` so a test
# database flushed by a transactional test can be re-seeded with exactly the same rules.
from riskrules.defaults import DEFAULT_RULES

def seed(apps, schema_editor):
    RiskRule = apps.get_model("riskrules", "RiskRule")
    for fields in DEFAULT_RULES:
        RiskRule.objects.get_or_create(name=fields["name"], defaults=fields)
    apps.get_model("riskrules", "RiskSettings").objects.get_or_create(pk=1)


def unseed(apps, schema_editor):
    RiskRule = apps.get_model("riskrules", "RiskRule")
    RiskRule.objects.filter(name__in=[r["name"] for r in DEFAULT_RULES]).delete()


class Migration(migrations.Migration):
    dependencies = [("riskrules", "0001_initial")]

    operations = [migrations.RunPython(seed, unseed)]
