"""Bookings and payments: read-only pages; bookings change through actions that call the
booking services with the staff user as the actor."""

from collections.abc import Callable

from django.contrib import admin, messages
from django.db.models import Model, QuerySet
from django.http import HttpRequest

from backend.admin.common import ViewOnlyAdmin, staff_user
from backend.admin.exports import BOOKING_COLUMNS, PAYMENT_COLUMNS, csv_export_action
from backend.exceptions import DomainError
from backend.models import Booking, BookingEvent, Payment, User
from backend.services.bookings import booking_cancel, booking_confirm, booking_refund


class PaymentInline(admin.TabularInline):
    model = Payment
    extra = 0
    can_delete = False
    readonly_fields = ("kind", "stripe_id", "amount", "currency", "status", "created_at")

    def has_add_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False


def act_on_each_booking(
    modeladmin: admin.ModelAdmin,
    request: HttpRequest,
    queryset: QuerySet[Booking],
    *,
    service: Callable[[int, User], Booking],
    done: str,
    refused: str,
) -> None:
    """Calls `service(booking_id, staff_user)` once per selected booking; reports each row.

    One service call (one transaction) per row, in id order: a refused row changes nothing
    and does not stop the others.
    """
    actor = staff_user(request)
    for booking in queryset.select_related("user", "session").order_by("pk"):
        label = str(booking)
        try:
            result = service(booking.pk, actor)
        except DomainError as error:
            modeladmin.message_user(request, f"{label}: {refused}: {error.message}", messages.ERROR)
            continue
        # A refund is a background task: by now it may have run (inline) or be queued.
        result.refresh_from_db()
        payment = result.get_payment_status_display().lower()
        if (
            result.status == Booking.Status.CANCELLED
            and result.payment_status == Booking.PaymentStatus.PAID
        ):
            # The money is not back yet: Stripe's refund is pending (its webhook settles it)
            # or failed. Staff must see that, not a success.
            refund = result.payments.filter(kind=Payment.Kind.REFUND).order_by("-id").first()
            state = f"the refund at Stripe is {refund.status}" if refund else "refund queued"
            modeladmin.message_user(
                request, f"{label}: {done}, payment still paid: {state}.", messages.WARNING
            )
            continue
        modeladmin.message_user(request, f"{label}: {done}, payment {payment}.", messages.SUCCESS)


@admin.action(description="Cancel (refund per the rules)", permissions=["act"])
def cancel_bookings(
    modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet[Booking]
) -> None:
    act_on_each_booking(
        modeladmin,
        request,
        queryset,
        service=lambda booking_id, actor: booking_cancel(
            booking_id=booking_id, actor=actor, as_staff=True
        ),
        done="cancelled",
        refused="not cancelled",
    )


@admin.action(description="Confirm", permissions=["act"])
def confirm_bookings(
    modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet[Booking]
) -> None:
    act_on_each_booking(
        modeladmin,
        request,
        queryset,
        service=lambda booking_id, actor: booking_confirm(
            booking_id=booking_id, actor=actor, as_staff=True
        ),
        done="confirmed",
        refused="not confirmed",
    )


@admin.action(description="Refund", permissions=["act"])
def refund_bookings(
    modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet[Booking]
) -> None:
    act_on_each_booking(
        modeladmin,
        request,
        queryset,
        service=lambda booking_id, actor: booking_refund(booking_id=booking_id, actor=actor),
        done="refund requested",
        refused="not refunded",
    )


class BookingEventInline(admin.TabularInline):
    """The booking's audit trail, oldest first; written only by booking_transition."""

    model = BookingEvent
    extra = 0
    can_delete = False
    fields = (
        "created_at",
        "reason",
        "actor",
        "from_status",
        "to_status",
        "from_payment_status",
        "to_payment_status",
        "seats_before",
        "seats_after",
        "request_id",
    )
    readonly_fields = fields

    def get_queryset(self, request: HttpRequest) -> QuerySet[BookingEvent]:
        return super().get_queryset(request).select_related("actor")

    def has_add_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False


@admin.register(Booking)
class BookingAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "user",
        "session",
        "session__start_time",
        "seats",
        "status",
        "payment_status",
        "amount",
        "currency",
        "created_at",
    )
    list_filter = ("status", "payment_status", "created_at")
    search_fields = ("session__title", "user__username", "user__email")
    # Session and user in the list come from one join, not a query per row.
    list_select_related = ("session", "user")
    readonly_fields = (
        "session",
        "user",
        "seats",
        "status",
        "payment_status",
        "amount",
        "refunded_amount",
        "currency",
        "notes",
        "created_at",
        "updated_at",
        "confirmed_at",
        "cancelled_at",
    )
    inlines = [BookingEventInline, PaymentInline]
    actions = [
        cancel_bookings,
        confirm_bookings,
        refund_bookings,
        csv_export_action(
            filename="bookings.csv", columns=BOOKING_COLUMNS, select_related=("user", "session")
        ),
    ]

    def has_add_permission(self, request: HttpRequest) -> bool:
        # A booking is made by its user through the API (seats, price, payment).
        return False

    def has_change_permission(self, request: HttpRequest, obj: Booking | None = None) -> bool:
        # Every field is read-only: a booking changes only through the actions (services).
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Booking | None = None) -> bool:
        # Nothing about a booking is ever hard-deleted (CONTRACT.md).
        return False

    def has_act_permission(self, request: HttpRequest) -> bool:
        """May run the workflow actions: staff holding the model's change permission."""
        return request.user.has_perm("backend.change_booking")


@admin.register(Payment)
class PaymentAdmin(ViewOnlyAdmin):
    """Every PaymentIntent and refund as Stripe reported it; written by the payment services."""

    list_display = ("stripe_id", "kind", "booking", "amount", "currency", "status", "created_at")
    list_filter = ("kind", "status", "currency", "created_at")
    search_fields = ("stripe_id", "booking__user__email", "booking__session__title")
    list_select_related = ("booking__user", "booking__session")
    readonly_fields = [f.name for f in Payment._meta.fields]
    actions = [
        csv_export_action(
            filename="payments.csv", columns=PAYMENT_COLUMNS, select_related=("booking__user",)
        )
    ]
