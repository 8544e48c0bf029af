from django.db import models


class Payment(models.Model):
    """One Stripe PaymentIntent or Refund, so support can answer "did this person pay?"."""

    class Kind(models.TextChoices):
        CHARGE = "charge", "Charge (PaymentIntent)"
        REFUND = "refund", "Refund"

    booking = models.ForeignKey(
        "backend.Booking", on_delete=models.PROTECT, related_name="payments"
    )
    kind = models.CharField(max_length=16, choices=Kind.choices)
    stripe_id = models.CharField(max_length=255, unique=True)
    # Major units (Decimal) as shown to people; Stripe itself is sent minor units.
    amount = models.DecimalField(max_digits=10, decimal_places=2)
    currency = models.CharField(max_length=3)
    # Stripe's own status string (requires_payment_method, succeeded, canceled, pending, ...).
    status = models.CharField(max_length=32)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "payments"
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=models.Q(amount__gte=0), name="payment_amount_gte_0"),
        ]
        indexes = [models.Index(fields=["booking", "kind"], name="payment_booking_kind_idx")]

    def __str__(self) -> str:
        amount = f"{self.amount} {self.currency}"
        return f"{self.kind.capitalize()} {self.stripe_id}: {amount} ({self.status})"


class StripeEvent(models.Model):
    """A processed webhook event: recorded in the same transaction as its effect."""

    event_id = models.CharField(max_length=255, unique=True)
    type = models.CharField(max_length=100)
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "stripe_events"
        ordering = ["-received_at"]

    def __str__(self) -> str:
        return f"{self.type} {self.event_id}"
