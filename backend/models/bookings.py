from django.conf import settings
from django.db import models


class Booking(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        CONFIRMED = "confirmed", "Confirmed"
        CANCELLED = "cancelled", "Cancelled"
        EXPIRED = "expired", "Expired"

    class PaymentStatus(models.TextChoices):
        NOT_REQUIRED = "not_required", "Not required"
        UNPAID = "unpaid", "Unpaid"
        PAID = "paid", "Paid"
        REFUNDED = "refunded", "Refunded"
        FAILED = "failed", "Failed"
        DISPUTED = "disputed", "Disputed"
        # The card is saved (a SetupIntent) and is charged off-session at the session's
        # decision time, if it runs (CONTRACT.md, "Sessions that run only if enough people book").
        SCHEDULED = "scheduled", "Scheduled"

    ACTIVE_STATUSES = (Status.PENDING, Status.CONFIRMED)

    session = models.ForeignKey(
        "backend.Session", on_delete=models.PROTECT, related_name="bookings"
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="bookings"
    )
    seats = models.PositiveSmallIntegerField(default=1)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    payment_status = models.CharField(
        max_length=16, choices=PaymentStatus.choices, default=PaymentStatus.UNPAID
    )
    # Price x seats when booked, in `currency`: later price changes never touch it.
    amount = models.DecimalField(max_digits=10, decimal_places=2)
    currency = models.CharField(max_length=3)
    # What has been given back so far (full and partial refunds that Stripe confirmed).
    refunded_amount = models.DecimalField(max_digits=10, decimal_places=2, default=0)
    # The platform's fee on `amount`, fixed when the booking is paid (PLATFORM_FEE_PERCENT or
    # the creator's rate that day), so a later change of the rate never rewrites history.
    platform_fee = models.DecimalField(max_digits=10, decimal_places=2, null=True, blank=True)
    # The percent of `amount` its cancellation was to refund (booking_rules.cancel_quote), set
    # when a paid booking is cancelled; null otherwise. `refunded_amount` is what came back.
    refund_percent = models.PositiveSmallIntegerField(null=True, blank=True)
    # When the creator last moved the session's start while this booking was active: from then
    # on its user's cancellation refunds in full until the start (CONTRACT.md).
    session_moved_at = models.DateTimeField(null=True, blank=True)
    # Added to the session's `schedule_sequence` for this booking's calendar SEQUENCE
    # (selectors/calendar.py): a move to another session sets it so that the SEQUENCE still
    # grows by one, so it is negative when the new session changed more often than the old.
    schedule_changes = models.SmallIntegerField(default=0)
    notes = models.TextField(blank=True, max_length=1000)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    confirmed_at = models.DateTimeField(null=True, blank=True)
    cancelled_at = models.DateTimeField(null=True, blank=True)
    # When a pending booking stops taking seats (booking_rules.seat_holding_q). Kept after the
    # booking moves on: a cancelled hold's expiry is what a re-booking inherits (no fresh hold
    # by cancel and re-book). The API shows it for pending bookings only.
    hold_expires_at = models.DateTimeField(null=True, blank=True)
    # The card saved for an off-session charge at the decision time (a session with a minimum):
    # the Stripe customer made for this booking, its SetupIntent, and the payment method it
    # saved. The method is detached once it is no longer needed (called off, cancelled).
    stripe_customer_id = models.CharField(max_length=255, blank=True)
    setup_intent_id = models.CharField(max_length=255, blank=True)
    payment_method_id = models.CharField(max_length=255, blank=True)

    class Meta:
        db_table = "bookings"
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=models.Q(seats__gte=1), name="booking_seats_gte_1"),
            models.CheckConstraint(condition=models.Q(amount__gte=0), name="booking_amount_gte_0"),
            models.CheckConstraint(
                condition=models.Q(status__in=["pending", "confirmed", "cancelled", "expired"]),
                name="booking_status_valid",
            ),
            models.CheckConstraint(
                condition=models.Q(
                    payment_status__in=[
                        "not_required",
                        "unpaid",
                        "paid",
                        "refunded",
                        "failed",
                        "disputed",
                        "scheduled",
                    ]
                ),
                name="booking_payment_status_valid",
            ),
            # Second line of defence behind the service's row lock: one active booking per
            # user and session.
            models.UniqueConstraint(
                fields=["user", "session"],
                condition=models.Q(status__in=["pending", "confirmed"]),
                name="booking_one_active_per_user_session",
            ),
        ]
        indexes = [
            models.Index(fields=["session", "status"], name="booking_session_status_idx"),
            models.Index(fields=["user", "-created_at"], name="booking_user_created_idx"),
            models.Index(fields=["status", "created_at"], name="booking_status_created_idx"),
            models.Index(fields=["status", "hold_expires_at"], name="booking_status_hold_idx"),
        ]

    def __str__(self) -> str:
        # Loads user and session: lists that show it select_related both.
        seats = f"{self.seats} seat" if self.seats == 1 else f"{self.seats} seats"
        return f"#{self.pk} {self.user.username} → {self.session.title}, {seats}"


class BookingEvent(models.Model):
    """One change of one booking: the audit trail support and the booking's people can read.

    Written only by `booking_transition` (backend/services/booking_changes.py), in the same
    transaction as the change it describes, whoever made it: the API, a Stripe webhook, the
    admin, a management command or a background task (actor null = the system or Stripe).
    """

    booking = models.ForeignKey(Booking, on_delete=models.PROTECT, related_name="events")
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    # A stable snake_case word: created, confirmed, cancelled, expired, paid, refunded, ...
    reason = models.CharField(max_length=64)
    from_status = models.CharField(max_length=16, blank=True)
    to_status = models.CharField(max_length=16)
    from_payment_status = models.CharField(max_length=16, blank=True)
    to_payment_status = models.CharField(max_length=16)
    seats_before = models.PositiveSmallIntegerField(null=True, blank=True)
    seats_after = models.PositiveSmallIntegerField()
    request_id = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "booking_events"
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["booking", "created_at"], name="booking_event_booking_idx")]

    def __str__(self) -> str:
        return f"#{self.booking_id} {self.reason}: {self.from_status or '-'} → {self.to_status}"
