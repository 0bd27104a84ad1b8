"""Keys are held row by row: a ``reserved`` status with ``reserved_until``.

Until now a pending order's hold was a count subtracted from stock. After this migration a
hold is a set of reserved key rows; the data step below turns every running hold into such
rows, so stock and deliveries stay exact across the upgrade. Reversing it puts the rows back
to available (the count-based holds of the old code then apply again).
"""

from django.db import migrations, models
from django.utils import timezone


def reserve_running_holds(apps, schema_editor):
    Order = apps.get_model("orders", "Order")
    CardKey = apps.get_model("cardpool", "CardKey")
    now = timezone.now()
    running = Order.objects.filter(status="pending", hold_expires_at__gt=now).order_by(
        "created_at", "pk"
    )
    for order in running.iterator():
        ids = list(
            CardKey.objects.filter(product_id=order.product_id, status="available")
            .order_by("pk")
            .values_list("pk", flat=True)[: order.quantity]
        )
        for slot, key_id in enumerate(ids, start=1):
            CardKey.objects.filter(pk=key_id).update(
                status="reserved", order_id=order.pk, slot=slot, reserved_until=order.hold_expires_at
            )


def release_reservations(apps, schema_editor):
    apps.get_model("cardpool", "CardKey").objects.filter(status="reserved").update(
        status="available", order_id=None, slot=None, reserved_until=None
    )


class Migration(migrations.Migration):

    dependencies = [
        ('cardpool', '0001_initial'),
        ('orders', '0004_order_buyer_identity'),
        ('shop', '0002_product_max_per_order_range'),
    ]

    operations = [
        migrations.RemoveConstraint(
            model_name='cardkey',
            name='cardkey_sold_iff_owned',
        ),
        migrations.AddField(
            model_name='cardkey',
            name='reserved_until',
            field=models.DateTimeField(blank=True, help_text="A reserved key is its pending order's until then; after it, anyone's.", null=True),
        ),
        migrations.AlterField(
            model_name='cardkey',
            name='status',
            field=models.CharField(choices=[('available', 'Available'), ('reserved', 'Reserved'), ('sold', 'Sold'), ('void', 'Void')], default='available', max_length=10),
        ),
        migrations.RunPython(reserve_running_holds, release_reservations),
        migrations.AddIndex(
            model_name='cardkey',
            index=models.Index(condition=models.Q(('status', 'reserved')), fields=['product', 'reserved_until'], name='cardkey_reserved_idx'),
        ),
        migrations.AddConstraint(
            model_name='cardkey',
            constraint=models.CheckConstraint(condition=models.Q(models.Q(('order__isnull', False), ('reserved_until__isnull', True), ('slot__gte', 1), ('sold_at__isnull', False), ('status', 'sold')), models.Q(('order__isnull', False), ('reserved_until__isnull', False), ('slot__gte', 1), ('sold_at__isnull', True), ('status', 'reserved')), models.Q(('order__isnull', True), ('reserved_until__isnull', True), ('slot__isnull', True), ('sold_at__isnull', True), ('status__in', ['available', 'void'])), _connector='OR'), name='cardkey_status_matches_owner'),
        ),
    ]
