"""The Django admin: staff look things up here and act through the same services as the API.

Nothing here writes a booking or a session field by hand. Sessions are validated by the API's
SessionWriteSerializer and saved by services.catalog; bookings change only through the
actions, which call services.bookings, so capacity, transitions and refunds follow one set of
rules whoever acts. A refused change is shown with the domain error's message and changes
nothing.
"""

import csv
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any, cast

from django import forms
from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied
from django.db.models import Model, QuerySet
from django.http import HttpRequest, HttpResponse
from social_django.models import Association, Nonce, UserSocialAuth

from backend.exceptions import DomainError
from backend.models import Booking, BookingEvent, Payment, Session, StoredFile, StripeEvent, User
from backend.serializers.catalog import SessionWriteSerializer, utc_iso
from backend.services.bookings import booking_cancel, booking_confirm, booking_refund
from backend.services.catalog import session_create, session_update

# Pages for models nobody uses. Sign-in stores the provider identity on User
# (oauth_provider, oauth_uid), so social_django's tables stay empty (Nonce and Association
# are OpenID 1/2 only); staff are not managed through permission groups.
for unused in (Group, UserSocialAuth, Nonce, Association):
    admin.site.unregister(unused)


# --- CSV export: one helper for every list ----------------------------------------------------

CsvColumn = tuple[str, Callable[[Any], object]]

# A cell starting with one of these is a formula to a spreadsheet (CSV injection): a session
# title is written by a creator, so text cells get a leading apostrophe.
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return utc_iso(value) or ""
    if isinstance(value, Decimal):
        return f"{value:f}"
    if isinstance(value, int):
        return str(value)
    text = str(value)
    return f"'{text}" if text.startswith(FORMULA_PREFIXES) else text


def write_csv(
    *, filename: str, columns: Sequence[CsvColumn], rows: Iterable[Model]
) -> HttpResponse:
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    writer = csv.writer(response)
    writer.writerow([header for header, _ in columns])
    for row in rows:
        writer.writerow([csv_cell(value(row)) for _, value in columns])
    return response


def csv_export_action(
    *, filename: str, columns: Sequence[CsvColumn], select_related: Sequence[str] = ()
) -> Callable[[admin.ModelAdmin, HttpRequest, QuerySet], HttpResponse]:
    """An admin action that downloads the selected rows, oldest first, as CSV."""

    @admin.action(description="Export selected as CSV", permissions=["view"])
    def export_csv(
        modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet
    ) -> HttpResponse:
        rows = queryset.select_related(*select_related).order_by("pk").iterator(chunk_size=2000)
        return write_csv(filename=filename, columns=columns, rows=rows)

    return export_csv


BOOKING_COLUMNS: list[CsvColumn] = [
    ("id", lambda b: b.pk),
    ("created_at", lambda b: b.created_at),
    ("user", lambda b: b.user.username),
    ("email", lambda b: b.user.email),
    ("session_id", lambda b: b.session_id),
    ("session", lambda b: b.session.title),
    ("session_start", lambda b: b.session.start_time),
    ("seats", lambda b: b.seats),
    ("status", lambda b: b.status),
    ("payment_status", lambda b: b.payment_status),
    ("amount", lambda b: b.amount),
    ("refunded_amount", lambda b: b.refunded_amount),
    ("currency", lambda b: b.currency),
    ("confirmed_at", lambda b: b.confirmed_at),
    ("cancelled_at", lambda b: b.cancelled_at),
]

SESSION_COLUMNS: list[CsvColumn] = [
    ("id", lambda s: s.pk),
    ("title", lambda s: s.title),
    ("creator", lambda s: s.creator.username),
    ("category", lambda s: s.category),
    ("start_time", lambda s: s.start_time),
    ("duration_minutes", lambda s: s.duration_minutes),
    ("capacity", lambda s: s.capacity),
    ("price", lambda s: s.price),
    ("currency", lambda s: s.currency),
    ("is_online", lambda s: s.is_online),
    ("status", lambda s: s.status),
    ("created_at", lambda s: s.created_at),
]

PAYMENT_COLUMNS: list[CsvColumn] = [
    ("id", lambda p: p.pk),
    ("created_at", lambda p: p.created_at),
    ("booking_id", lambda p: p.booking_id),
    ("user", lambda p: p.booking.user.username),
    ("kind", lambda p: p.kind),
    ("stripe_id", lambda p: p.stripe_id),
    ("amount", lambda p: p.amount),
    ("currency", lambda p: p.currency),
    ("status", lambda p: p.status),
]


def staff_user(request: HttpRequest) -> User:
    """The signed-in staff user (the admin lets no one else in)."""
    user = request.user
    if not isinstance(user, User) or not user.is_staff:
        raise PermissionDenied
    return user


# --- users --------------------------------------------------------------------------------------


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    list_display = (
        "username",
        "email",
        "first_name",
        "last_name",
        "role",
        "oauth_provider",
        "date_joined",
    )
    list_filter = ("role", "oauth_provider", "is_staff", "is_active")
    search_fields = ("username", "email", "first_name", "last_name", "oauth_uid")
    fieldsets = (
        *(DjangoUserAdmin.fieldsets or ()),
        ("Marketplace", {"fields": ("role", "bio", "avatar", "avatar_url")}),
        ("OAuth", {"fields": ("oauth_provider", "oauth_uid")}),
    )
    # Uploads go through the API, which validates and re-encodes images; not through the admin.
    readonly_fields = ("oauth_provider", "oauth_uid", "avatar", "last_login", "date_joined")


# --- sessions -----------------------------------------------------------------------------------


class SessionAdminForm(forms.ModelForm):
    """Checks what staff typed with the API's own SessionWriteSerializer.

    On a change only the edited fields are sent, as a PATCH would be (so an untouched start
    time in the past stays acceptable). `validated_data` is what the service then receives.
    `service_refusal` is set by SessionAdmin when the service refused the save: the form is
    shown again with that reason.
    """

    service_refusal: DomainError | None = None

    class Meta:
        model = Session
        fields = ["creator", *SessionWriteSerializer.Meta.fields]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.validated_data: dict[str, Any] = {}
        creator_field = self.fields.get("creator")
        if isinstance(creator_field, forms.ModelChoiceField):
            creator_field.queryset = User.objects.filter(role=User.Role.CREATOR)

    def clean(self) -> dict[str, Any]:
        super().clean()
        cleaned = self.cleaned_data
        if self.service_refusal is not None:
            self.add_error(None, f"Not saved: {self.service_refusal.message}")
        if self.errors:
            return cleaned
        editing = self.instance.pk is not None
        names = [
            name
            for name in SessionWriteSerializer.Meta.fields
            if name in cleaned and (not editing or name in self.changed_data)
        ]
        serializer = SessionWriteSerializer(
            instance=self.instance if editing else None,
            data={name: cleaned[name] for name in names},
            partial=editing,
        )
        if serializer.is_valid():
            self.validated_data = dict(serializer.validated_data)
        else:
            for name, errors in serializer.errors.items():
                self.add_error(name if name in self.fields else None, errors)
        return cleaned


class ServiceRefused(Exception):
    """A service refused an admin save; carries the domain error to show."""

    def __init__(self, error: DomainError):
        super().__init__(error.message)
        self.error = error


@admin.register(Session)
class SessionAdmin(admin.ModelAdmin):
    form = SessionAdminForm
    list_display = (
        "title",
        "creator",
        "start_time",
        "duration_minutes",
        "capacity",
        "price",
        "currency",
        "status",
        "created_at",
    )
    list_filter = ("status", "category", "is_online", "start_time")
    search_fields = ("title", "description", "creator__username", "creator__email")
    list_select_related = ("creator",)
    raw_id_fields = ("creator",)
    date_hierarchy = "start_time"
    actions = [
        csv_export_action(
            filename="sessions.csv", columns=SESSION_COLUMNS, select_related=("creator",)
        )
    ]

    def get_readonly_fields(self, request: HttpRequest, obj: Session | None = None) -> tuple:
        # A session's image is uploaded through the API; its creator never changes.
        return ("image", "creator") if obj is not None else ("image",)

    def has_change_permission(self, request: HttpRequest, obj: Session | None = None) -> bool:
        # Cancelled is final: its bookings were cancelled and refunded with it.
        if obj is not None and obj.status == Session.Status.CANCELLED:
            return False
        return super().has_change_permission(request, obj)

    def get_form(
        self, request: HttpRequest, obj: Session | None = None, change: bool = False, **kwargs: Any
    ) -> type[forms.ModelForm]:
        form = cast(type[SessionAdminForm], super().get_form(request, obj, change, **kwargs))
        form.service_refusal = getattr(request, "_session_admin_refusal", None)
        return form

    def changeform_view(
        self,
        request: HttpRequest,
        object_id: str | None = None,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except ServiceRefused as refused:
            # The admin's transaction rolled back; show the same input again with the reason.
            request._session_admin_refusal = refused.error  # type: ignore[attr-defined]
            return super().changeform_view(request, object_id, form_url, extra_context)

    def save_model(
        self, request: HttpRequest, obj: Session, form: SessionAdminForm, change: bool
    ) -> None:
        """Saves through the catalog service, never `obj.save()`.

        Staff act as themselves (`as_staff`), not as the session's creator, so a cancellation
        cascades to the bookings with the staff user as the actor.
        """
        try:
            if change:
                session = session_update(
                    session_id=obj.pk,
                    actor=staff_user(request),
                    data=form.validated_data,
                    as_staff=True,
                )
            else:
                session = session_create(
                    creator=form.cleaned_data["creator"], **form.validated_data
                )
        except DomainError as error:
            raise ServiceRefused(error) from error
        obj.pk = session.pk
        obj._state.adding = False
        obj.refresh_from_db()


# --- bookings and payments ----------------------------------------------------------------------


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
        payment = result.get_payment_status_display().lower()
        if (
            result.status == Booking.Status.CANCELLED
            and result.payment_status == Booking.PaymentStatus.PAID
        ):
            # The money is not back yet: Stripe's refund is pending (its webhook settles it)
            # or failed. Staff must see that, not a success.
            refund = result.payments.filter(kind=Payment.Kind.REFUND).order_by("-id").first()
            state = f"the refund at Stripe is {refund.status}" if refund else "no refund yet"
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
class PaymentAdmin(admin.ModelAdmin):
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

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Payment | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Payment | None = None) -> bool:
        return False


# --- records support reads, never edits ---------------------------------------------------------


class ViewOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False


@admin.register(StripeEvent)
class StripeEventAdmin(ViewOnlyAdmin):
    """Which webhook events arrived. Deleting one would let a redelivery apply twice."""

    list_display = ("event_id", "type", "received_at")
    list_filter = ("type", "received_at")
    search_fields = ("event_id", "type")


@admin.register(StoredFile)
class StoredFileAdmin(ViewOnlyAdmin):
    """Who owns which object in storage. Uploads and deletions go through the files service,
    which also writes or deletes the object itself; an edited row would break ownership."""

    list_display = ("key", "owner", "purpose", "size", "content_type", "created_at")
    list_filter = ("purpose", "content_type", "created_at")
    search_fields = ("key", "owner__username")
    list_select_related = ("owner",)
