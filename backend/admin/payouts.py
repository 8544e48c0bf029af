"""Connected accounts and transfers. Staff set a creator's fee rate; money moves only through
services.payouts (the "Retry transfer" action), never by editing a row."""

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from backend.admin.common import ViewOnlyAdmin, staff_user
from backend.exceptions import DomainError
from backend.models import ConnectedAccount, Transfer
from backend.services.payouts import transfer_retry


@admin.register(ConnectedAccount)
class ConnectedAccountAdmin(admin.ModelAdmin):
    """The account's state is Stripe's (account.updated); only the fee rate is ours to set.
    A new rate applies to bookings paid from then on (each keeps the fee of its payment)."""

    list_display = (
        "stripe_account_id",
        "user",
        "charges_enabled",
        "payouts_enabled",
        "details_submitted",
        "fee_percent",
        "updated_at",
    )
    list_filter = ("charges_enabled", "payouts_enabled")
    search_fields = ("stripe_account_id", "user__username", "user__email")
    list_select_related = ("user",)
    fields = (
        "user",
        "stripe_account_id",
        "charges_enabled",
        "payouts_enabled",
        "details_submitted",
        "requirements_due",
        "fee_percent",
        "stripe_updated_at",
    )
    readonly_fields = tuple(name for name in fields if name != "fee_percent")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # accounts are made by onboarding, at Stripe first

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


@admin.action(description="Retry transfer (the ones Stripe refused)")
def retry_transfers(
    modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet[Transfer]
) -> None:
    staff_user(request)
    for transfer in queryset.order_by("pk"):
        try:
            transfer_retry(transfer_id=transfer.pk)
        except DomainError as error:
            modeladmin.message_user(
                request, f"Transfer {transfer.pk}: not retried: {error.message}", messages.ERROR
            )
            continue
        modeladmin.message_user(request, f"Transfer {transfer.pk}: queued again.", messages.SUCCESS)


@admin.register(Transfer)
class TransferAdmin(ViewOnlyAdmin):
    list_display = (
        "id",
        "booking",
        "creator",
        "amount",
        "fee",
        "reversed_amount",
        "currency",
        "status",
        "stripe_transfer_id",
        "created_at",
    )
    list_filter = ("status", "currency")
    search_fields = ("stripe_transfer_id", "creator__username", "booking__id")
    list_select_related = ("creator", "booking__user", "booking__session")
    actions = [retry_transfers]
