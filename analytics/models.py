"""What the owner's reports read besides the shop's own tables: rollups and a few small facts.

The rollups are *derived* data. Nothing writes them but ``analytics.rollups``, which recomputes
a bucket from the source rows (orders, their attribution and ledger entries) whenever one of
those rows changed; so a rollup row is always "the aggregate of these orders as they are now",
never a running total that a missed update could throw off.

How a change is noticed without any app importing analytics: database triggers (migration
0002) append the id of every order that was inserted or whose status, payment, delivery,
refund or dispute changed, and of every order a ledger entry was posted for, to
``OrderChange`` — in the same transaction as the change, so a change and its mark commit or
roll back together. ``rollups_refresh`` takes those marks and recomputes the hours they fall in.

Buckets are UTC hours (``hour``): the shop's time zone is applied when reading, so days, hours
of the day and weekdays come out in local time, and changing ``TIME_ZONE`` needs no rebuild.
(Zones whose offset is not a whole hour, such as India's, would see each bucket straddle two
local hours; Kami reports whole hours for them as the UTC hour that starts inside them.)
"""

from __future__ import annotations

from django.db import models

#: Upper bounds (exclusive, major units) of the order-value bands; the last band is open.
VALUE_BANDS = (5, 10, 20, 50, 100, 200, 500)
VALUE_BAND_FIELDS = tuple(f"value_band_{i}" for i in range(len(VALUE_BANDS) + 1))


class OrderSource(models.Model):
    """Where a storefront order's buyer came from: ``utm_source`` or an outside referrer of the
    visit that brought them (last touch, 30 days), recorded at checkout. Orders with none (API
    clients, typed-in addresses) have no row and count as direct. Promoters are not stored
    here: the order's ``Attribution`` already says who referred it."""

    class Kind(models.TextChoices):
        UTM = "utm", "utm_source"
        REFERRER = "referrer", "Referring site"

    order = models.OneToOneField(
        "orders.Order", on_delete=models.CASCADE, primary_key=True, related_name="+"
    )
    kind = models.CharField(max_length=8, choices=Kind.choices)
    value = models.CharField(max_length=100)

    def __str__(self) -> str:
        return f"{self.kind}:{self.value}"


class OrderChange(models.Model):
    """A mark left by a trigger: this order changed and its buckets need recomputing.
    Append-only for writers (no unique key, so concurrent checkouts never wait on each other);
    ``rollups_refresh`` deletes exactly the marks it has seen."""

    id = models.BigAutoField(primary_key=True)
    order_id = models.BigIntegerField()

    def __str__(self) -> str:
        return f"order {self.order_id} changed"


class SalesHour(models.Model):
    """Orders placed in one UTC hour, per product and currency, as they stand now.

    Every figure belongs to the hour the order was *placed*: a refund or a late delivery
    today changes the row of the hour the order was placed in (recomputed, see the module
    docstring). Money is minor units of ``currency``.
    """

    hour = models.DateTimeField()
    product_id = models.BigIntegerField()
    currency = models.CharField(max_length=3)
    orders = models.IntegerField(default=0)
    paid_orders = models.IntegerField(default=0)
    delivered_orders = models.IntegerField(default=0)
    units_paid = models.IntegerField(default=0)
    units_delivered = models.IntegerField(default=0)
    revenue = models.BigIntegerField(default=0, help_text="Paid amounts, before refunds.")
    refunded_amount = models.BigIntegerField(default=0)
    refunded_orders = models.IntegerField(default=0)
    disputed_orders = models.IntegerField(default=0)
    new_buyer_orders = models.IntegerField(
        default=0, help_text="Paid orders that were their buyer's first paid order."
    )
    new_buyer_revenue = models.BigIntegerField(default=0)
    repeat_7 = models.IntegerField(
        default=0, help_text="First paid orders whose buyer paid again within 7 days."
    )
    repeat_30 = models.IntegerField(default=0)
    unemailed = models.IntegerField(
        default=0, help_text="Delivered orders whose delivery email is not recorded as sent."
    )
    value_band_0 = models.IntegerField(default=0)
    value_band_1 = models.IntegerField(default=0)
    value_band_2 = models.IntegerField(default=0)
    value_band_3 = models.IntegerField(default=0)
    value_band_4 = models.IntegerField(default=0)
    value_band_5 = models.IntegerField(default=0)
    value_band_6 = models.IntegerField(default=0)
    value_band_7 = models.IntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["hour", "product_id", "currency"], name="saleshour_unique_bucket"
            )
        ]

    def __str__(self) -> str:
        return f"{self.hour:%Y-%m-%d %H}h product {self.product_id}"


class ShopHour(models.Model):
    """``SalesHour`` summed over products: one row per UTC hour and currency, so a year of
    shop-wide figures (the Time, Buyers and Risk reports) reads 8,760 rows, not one per product.
    Recomputed from ``SalesHour`` for the same hours, in the same refresh."""

    hour = models.DateTimeField()
    currency = models.CharField(max_length=3)
    orders = models.IntegerField(default=0)
    paid_orders = models.IntegerField(default=0)
    delivered_orders = models.IntegerField(default=0)
    units_paid = models.IntegerField(default=0)
    units_delivered = models.IntegerField(default=0)
    revenue = models.BigIntegerField(default=0)
    refunded_amount = models.BigIntegerField(default=0)
    refunded_orders = models.IntegerField(default=0)
    disputed_orders = models.IntegerField(default=0)
    new_buyer_orders = models.IntegerField(default=0)
    new_buyer_revenue = models.BigIntegerField(default=0)
    repeat_7 = models.IntegerField(
        default=0, help_text="First paid orders whose buyer paid again within 7 days."
    )
    repeat_30 = models.IntegerField(default=0)
    unemailed = models.IntegerField(
        default=0, help_text="Delivered orders whose delivery email is not recorded as sent."
    )
    value_band_0 = models.IntegerField(default=0)
    value_band_1 = models.IntegerField(default=0)
    value_band_2 = models.IntegerField(default=0)
    value_band_3 = models.IntegerField(default=0)
    value_band_4 = models.IntegerField(default=0)
    value_band_5 = models.IntegerField(default=0)
    value_band_6 = models.IntegerField(default=0)
    value_band_7 = models.IntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["hour", "currency"], name="shophour_unique_bucket")
        ]

    def __str__(self) -> str:
        return f"{self.hour:%Y-%m-%d %H}h {self.currency}"


class ChannelHour(models.Model):
    """Orders placed in one UTC hour per channel: a promoter (``value`` = code), a
    ``utm_source``, a referring site, or direct. ``commission`` is every ledger entry posted
    for those orders (commissions less clawbacks, both levels), for the promoters' ROI."""

    class Kind(models.TextChoices):
        PROMOTER = "promoter", "Promoter"
        UTM = "utm", "utm_source"
        REFERRER = "referrer", "Referring site"
        DIRECT = "direct", "Direct"

    hour = models.DateTimeField()
    kind = models.CharField(max_length=8, choices=Kind.choices)
    value = models.CharField(max_length=100, blank=True)
    currency = models.CharField(max_length=3)
    orders = models.IntegerField(default=0)
    paid_orders = models.IntegerField(default=0)
    delivered_orders = models.IntegerField(default=0)
    revenue = models.BigIntegerField(default=0)
    refunded_amount = models.BigIntegerField(default=0)
    commission = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["hour", "kind", "value", "currency"], name="channelhour_unique_bucket"
            )
        ]

    def __str__(self) -> str:
        return f"{self.hour:%Y-%m-%d %H}h {self.kind}:{self.value}"


class BuyerSummary(models.Model):
    """One row per buyer (``Order.buyer_identity``) who ever paid, recomputed from the buyer's
    orders when one changes: first, second and last payment, and what they paid (the top
    buyers; index on currency and amount) in one currency of theirs — a shop's only one,
    unless it sells in several and the buyer paid in more than one.

    ``first_order_created_at`` names the hour bucket of the buyer's first paid order, whose
    ``repeat_7``/``repeat_30`` change when the buyer pays again: the refresh recomputes it."""

    identity = models.CharField(max_length=254, primary_key=True)
    first_paid_at = models.DateTimeField()
    first_order_created_at = models.DateTimeField()
    second_paid_at = models.DateTimeField(null=True, blank=True)
    last_paid_at = models.DateTimeField()
    paid_orders = models.IntegerField()
    currency = models.CharField(max_length=3)
    revenue = models.BigIntegerField(default=0)
    refunded_amount = models.BigIntegerField(default=0)

    class Meta:
        indexes = [
            models.Index(fields=["first_paid_at"], name="buyersummary_first_idx"),
            models.Index(fields=["currency", "-revenue"], name="buyersummary_top_idx"),
        ]

    def __str__(self) -> str:
        return self.identity


LATENCY_EDGES_MS = (
    100, 200, 300, 400, 500, 600, 700, 800, 900, 1000, 1250, 1500, 1750, 2000, 2500, 3000,
    4000, 5000, 7500, 10000, 15000, 20000, 30000, 45000, 60000, 120000,
)  # fmt: skip


class LatencyHour(models.Model):
    """Payment → delivery times of the orders placed in one UTC hour, as a histogram: how many
    deliveries took at most ``LATENCY_EDGES_MS[bucket]`` (and more than the edge before; the
    last bucket is everything slower). Percentiles over any range are read from the summed
    buckets, to the bucket's upper edge; the share within 10 s is exact (10 s is an edge)."""

    hour = models.DateTimeField()
    bucket = models.PositiveSmallIntegerField()
    deliveries = models.IntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["hour", "bucket"], name="latencyhour_unique_bucket")
        ]

    def __str__(self) -> str:
        return f"{self.hour:%Y-%m-%d %H}h bucket {self.bucket}: {self.deliveries}"


class SalesDay(models.Model):
    """``SalesHour`` summed per *local* day (the ``RollupZone``'s time zone), for the
    per-product figures of long ranges: a year is 365 rows per product, not 8,760."""

    day = models.DateField()
    product_id = models.BigIntegerField()
    currency = models.CharField(max_length=3)
    orders = models.IntegerField(default=0)
    paid_orders = models.IntegerField(default=0)
    delivered_orders = models.IntegerField(default=0)
    units_paid = models.IntegerField(default=0)
    units_delivered = models.IntegerField(default=0)
    revenue = models.BigIntegerField(default=0)
    refunded_amount = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["day", "product_id", "currency"], name="salesday_unique_bucket"
            )
        ]

    def __str__(self) -> str:
        return f"{self.day} product {self.product_id}"


class PairDay(models.Model):
    """``PairHour`` summed per local day (see ``SalesDay``)."""

    day = models.DateField()
    product_a = models.BigIntegerField()
    product_b = models.BigIntegerField()
    pairs = models.IntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["day", "product_a", "product_b"], name="pairday_unique_bucket"
            )
        ]

    def __str__(self) -> str:
        return f"{self.day} {self.product_a}+{self.product_b}: {self.pairs}"


class RollupZone(models.Model):
    """The time zone the day rollups were cut in. When ``TIME_ZONE`` changes, the next refresh
    recuts them from the hour rollups (seconds) before anything reads them."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    time_zone = models.CharField(max_length=64)

    def __str__(self) -> str:
        return self.time_zone


class PairHour(models.Model):
    """Bought together: for the paid orders placed in one UTC hour, how many completed a pair
    — their buyer had paid for the other product in the 30 days before. ``product_a`` is the
    lower id. Only a buyer's earlier payments decide an order's pairs, and a payment never
    goes away, so recomputing an order's hour when it changes keeps this exact."""

    WINDOW_DAYS = 30

    hour = models.DateTimeField()
    product_a = models.BigIntegerField()
    product_b = models.BigIntegerField()
    pairs = models.IntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["hour", "product_a", "product_b"], name="pairhour_unique_bucket"
            )
        ]

    def __str__(self) -> str:
        return f"{self.hour:%Y-%m-%d %H}h {self.product_a}+{self.product_b}: {self.pairs}"


class ProductViewHour(models.Model):
    """Product page views per UTC hour, counted by ``analytics.middleware``. Each view adds one
    to one of ``STRIPES`` rows chosen at random, so a popular product never makes one row that
    every visitor's request waits on."""

    STRIPES = 8

    hour = models.DateTimeField()
    product_id = models.BigIntegerField()
    stripe = models.PositiveSmallIntegerField(default=0)
    views = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["hour", "product_id", "stripe"], name="productviewhour_unique_bucket"
            )
        ]

    def __str__(self) -> str:
        return f"{self.hour:%Y-%m-%d %H}h product {self.product_id}: {self.views}"


class WeeklySummary(models.Model):
    """One weekly summary email per week (unique ``week_start``, a local Monday): a periodic
    task that runs twice, or on two workers, queues one email. The email is an outbox message
    (``message_key``), written in the transaction that claims the row; what really happened to
    it is read there (``analytics.summary.summary_email_state``), never assumed."""

    class Status(models.TextChoices):
        SENDING = "sending", "Being prepared"
        QUEUED = "queued", "Handed to the outbox"
        NO_RECIPIENT = "no_recipient", "Not sent: no owner email in the shop settings"
        # Rows from before the outbox, when the summary was sent directly.
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed"

    week_start = models.DateField(unique=True)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.SENDING)
    recipient = models.EmailField(blank=True)
    subject = models.CharField(max_length=200, blank=True)
    message_key = models.CharField(
        max_length=200, blank=True, help_text="The idempotency key of its outbox message."
    )
    error = models.TextField(blank=True, help_text="Before the outbox: why the send failed.")
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(
        null=True, blank=True, help_text="Before the outbox: when it was sent directly."
    )

    class Meta:
        ordering = ["-week_start"]
        verbose_name_plural = "weekly summaries"

    def __str__(self) -> str:
        return f"Week of {self.week_start}: {self.get_status_display()}"
