from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.db.models import Count, QuerySet
from django.http import HttpRequest

from backend.models import Booking, Payment, Review, Session, StoredFile, StripeEvent, User
from backend.services.reviews import review_set_hidden


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    list_display = ("username", "email", "first_name", "last_name", "role", "oauth_provider")
    list_filter = ("role", "oauth_provider", "is_staff", "is_active")
    search_fields = ("username", "email", "first_name", "last_name", "oauth_uid")
    fieldsets = (
        *DjangoUserAdmin.fieldsets,
        ("Marketplace", {"fields": ("role", "bio", "avatar", "avatar_url")}),
        ("OAuth", {"fields": ("oauth_provider", "oauth_uid")}),
    )
    # Uploads go through the API, which validates and re-encodes images; not through the admin.
    readonly_fields = ("oauth_provider", "oauth_uid", "avatar", "last_login", "date_joined")


@admin.register(Session)
class SessionAdmin(admin.ModelAdmin):
    list_display = ("title", "creator", "category", "start_time", "price", "currency", "status")
    list_filter = ("status", "category", "is_online", "start_time")
    search_fields = ("title", "description", "creator__username", "creator__email")
    list_select_related = ("creator",)
    raw_id_fields = ("creator",)
    date_hierarchy = "start_time"
    readonly_fields = ("image",)


class PaymentInline(admin.TabularInline):
    model = Payment
    extra = 0
    can_delete = False
    readonly_fields = ("kind", "stripe_id", "amount", "currency", "status", "created_at")

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Booking)
class BookingAdmin(admin.ModelAdmin):
    list_display = ("id", "session", "user", "seats", "status", "payment_status", "amount")
    list_filter = ("status", "payment_status")
    search_fields = ("session__title", "user__username", "user__email")
    # Session and user in the list come from one join, not a query per row.
    list_select_related = ("session", "user")
    raw_id_fields = ("session", "user")
    readonly_fields = (
        "status",
        "payment_status",
        "amount",
        "currency",
        "created_at",
        "updated_at",
        "confirmed_at",
        "cancelled_at",
    )
    inlines = [PaymentInline]

    def has_delete_permission(self, request, obj=None) -> bool:
        # Nothing about a booking is ever hard-deleted (CONTRACT.md).
        return False


@admin.register(Payment)
class PaymentAdmin(admin.ModelAdmin):
    list_display = ("stripe_id", "kind", "booking", "amount", "currency", "status", "created_at")
    list_filter = ("kind", "status", "currency")
    search_fields = ("stripe_id", "booking__user__email", "booking__session__title")
    list_select_related = ("booking",)
    readonly_fields = [f.name for f in Payment._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(StripeEvent)
class StripeEventAdmin(admin.ModelAdmin):
    list_display = ("event_id", "type", "received_at")
    search_fields = ("event_id", "type")
    readonly_fields = ("event_id", "type", "received_at")


@admin.register(StoredFile)
class StoredFileAdmin(admin.ModelAdmin):
    list_display = ("key", "owner", "purpose", "size", "content_type", "created_at")
    list_filter = ("purpose", "content_type")
    search_fields = ("key", "owner__username")
    list_select_related = ("owner",)
    raw_id_fields = ("owner", "session")


@admin.register(Review)
class ReviewAdmin(admin.ModelAdmin):
    """Moderation: staff hide reported reviews (they leave every list and average) or unhide
    them. Ratings and texts are the author's: read-only here, and never deleted."""

    list_display = ("id", "session", "author", "rating", "report_count", "is_hidden", "created_at")
    list_filter = ("is_hidden", "rating")
    search_fields = ("comment", "author__username", "session__title", "reports__reason")
    list_select_related = ("session", "author")
    readonly_fields = (
        *("booking", "session", "creator", "author", "rating", "comment", "reply", "replied_at"),
        *("is_hidden", "hidden_at", "created_at", "updated_at", "report_reasons"),
    )
    actions = ("hide_reviews", "unhide_reviews")

    def get_queryset(self, request: HttpRequest) -> QuerySet[Review]:
        return super().get_queryset(request).annotate(reports_total=Count("reports"))

    @admin.display(description="reports", ordering="reports_total")
    def report_count(self, review: Review) -> int:
        # The annotation of get_queryset (one query for the page, not one per row).
        return int(getattr(review, "reports_total", 0))

    @admin.display(description="reports")
    def report_reasons(self, review: Review) -> str:
        # Plain text: the admin escapes it like every other value.
        return "\n".join(f"{report.reporter}: {report.reason}" for report in review.reports.all())

    @admin.action(description="Hide the selected reviews (leave lists and averages)")
    def hide_reviews(self, request: HttpRequest, queryset: QuerySet[Review]) -> None:
        for review_id in queryset.values_list("pk", flat=True):
            review_set_hidden(review_id=review_id, hidden=True)

    @admin.action(description="Unhide the selected reviews")
    def unhide_reviews(self, request: HttpRequest, queryset: QuerySet[Review]) -> None:
        for review_id in queryset.values_list("pk", flat=True):
            review_set_hidden(review_id=review_id, hidden=False)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Review | None = None) -> bool:
        return False
