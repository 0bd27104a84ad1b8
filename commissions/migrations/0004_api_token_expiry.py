"""API tokens expire (issue #9): ``expires_at``, set for existing tokens to 30 days after they
were made (``API_TOKEN_TTL_DAYS``'s default), so tokens older than that stop working now."""

from datetime import timedelta

from django.db import migrations, models
from django.db.models import F


def set_expiry(apps, schema_editor):
    ApiToken = apps.get_model("commissions", "ApiToken")
    ApiToken.objects.update(expires_at=F("created_at") + timedelta(days=30))


class Migration(migrations.Migration):
    dependencies = [("commissions", "0003_ledger_append_only_trigger")]

    operations = [
        migrations.AddField(
            model_name="apitoken", name="expires_at", field=models.DateTimeField(null=True)
        ),
        migrations.RunPython(set_expiry, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="apitoken", name="expires_at", field=models.DateTimeField()
        ),
        migrations.AddIndex(
            model_name="apitoken",
            index=models.Index(fields=["user", "created_at"], name="apitoken_user_created"),
        ),
    ]
