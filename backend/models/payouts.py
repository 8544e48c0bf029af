"""Stripe Connect: a creator's connected account and the transfers of their share."""

from django.conf import settings
from django.db import models


class ConnectedAccount(models.Model):
    """A creator's Stripe Express account, created on the first onboarding call.

    The flags mirror Stripe's account as the last `account.updated` event (or retrieval) said;
    `stripe_updated_at` is that event's `created`, so an older event delivered late is ignored.
    """

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="connected_account"
    )
    stripe_account_id = models.CharField(max_length=255, unique=True)
    charges_enabled = models.BooleanField(default=False)
    payouts_enabled = models.BooleanField(default=False)
    details_submitted = models.BooleanField(default=False)
    requirements_due = models.JSONField(default=list, blank=True)
    # Staff may give one creator another rate than PLATFORM_FEE_PERCENT (null: the default).
    # Bookings keep the fee of the day they were paid (Booking.platform_fee).
    fee_percent = models.DecimalField(max_digits=5, decimal_places=2, null=True, blank=True)
    stripe_updated_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "connected_accounts"
        constraints = [
            models.CheckConstraint(
                condition=models.Q(fee_percent__isnull=True)
                | models.Q(fee_percent__gte=0, fee_percent__lte=100),
                name="connected_account_fee_percent_range",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.stripe_account_id} ({self.user_id})"


class Transfer(models.Model):
    """The one transfer of one booking's creator share to the creator's connected account.

    The row is written (`pending`) in the same transaction as the outbox message that makes the
    Stripe call; the unique booking makes "one transfer per booking" a database fact.
    `reversed_amount` is what has been asked back (refunds after the transfer, a lost dispute).
    """

    class Status(models.TextChoices):
        PENDING = "pending", "Pending (queued for Stripe)"
        HELD = "held", "Held (dispute open)"
        PAID = "paid", "Paid (transferred)"
        CANCELLED = "cancelled", "Cancelled (never sent)"
        FAILED = "failed", "Failed (Stripe refused)"

    booking = models.OneToOneField(
        "backend.Booking", on_delete=models.PROTECT, related_name="transfer"
    )
    creator = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="transfers"
    )
    account = models.ForeignKey(ConnectedAccount, on_delete=models.PROTECT, related_name="+")
    stripe_transfer_id = models.CharField(max_length=255, unique=True, null=True, blank=True)
    # The creator's share sent, and the platform's fee kept, both net of refunds at sending.
    amount = models.DecimalField(max_digits=10, decimal_places=2)
    fee = models.DecimalField(max_digits=10, decimal_places=2)
    currency = models.CharField(max_length=3)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    reversed_amount = models.DecimalField(max_digits=10, decimal_places=2, default=0)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    transferred_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "transfers"
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=models.Q(amount__gt=0), name="transfer_amount_gt_0"),
            models.CheckConstraint(
                condition=models.Q(reversed_amount__gte=0, reversed_amount__lte=models.F("amount")),
                name="transfer_reversed_within_amount",
            ),
        ]
        indexes = [models.Index(fields=["creator", "-created_at"], name="transfer_creator_idx")]

    def __str__(self) -> str:
        return f"Transfer of booking #{self.booking_id}: {self.amount} {self.currency}"


class TransferReversal(models.Model):
    """One reversal Stripe made of a transfer (a refund after it, a lost dispute)."""

    transfer = models.ForeignKey(Transfer, on_delete=models.PROTECT, related_name="reversals")
    stripe_id = models.CharField(max_length=255, unique=True)
    amount = models.DecimalField(max_digits=10, decimal_places=2)
    reason = models.CharField(max_length=32)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "transfer_reversals"
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"Reversal {self.stripe_id}: {self.amount}"
