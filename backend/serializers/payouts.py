"""Payout shapes (CONTRACT.md, "Creators get paid"). Names are unique (drf-yasg schemas)."""

from rest_framework import serializers

from backend.models import ConnectedAccount, Transfer
from backend.serializers.common import page_of


class PayoutOnboardingInputSerializer(serializers.Serializer):
    return_url = serializers.URLField(
        max_length=2000,
        help_text="Where Stripe sends the creator after onboarding; on one of the app's origins "
        "(CORS_ALLOWED_ORIGINS), else 400 `invalid_redirect_url`.",
    )
    refresh_url = serializers.URLField(
        max_length=2000,
        help_text="Where Stripe sends the creator when the link has expired (ask for a new "
        "one there); same origin rule.",
    )


class PayoutOnboardingOutputSerializer(serializers.Serializer):
    url = serializers.URLField(help_text="Stripe's hosted onboarding page (single use).")
    expires_at = serializers.DateTimeField(help_text="The link stops working at this time.")


class PayoutAccountSerializer(serializers.Serializer):
    """The caller's connected account; before onboarding `account_id` is null, all false."""

    account_id = serializers.CharField(allow_null=True, help_text="Stripe's acct_... id.")
    charges_enabled = serializers.BooleanField()
    payouts_enabled = serializers.BooleanField()
    details_submitted = serializers.BooleanField()
    requirements_due = serializers.ListField(
        child=serializers.CharField(), help_text="Stripe's `requirements.currently_due`."
    )

    @staticmethod
    def from_account(account: ConnectedAccount | None) -> dict:
        if account is None:
            return {
                "account_id": None,
                "charges_enabled": False,
                "payouts_enabled": False,
                "details_submitted": False,
                "requirements_due": [],
            }
        return {
            "account_id": account.stripe_account_id,
            "charges_enabled": account.charges_enabled,
            "payouts_enabled": account.payouts_enabled,
            "details_submitted": account.details_submitted,
            "requirements_due": list(account.requirements_due or []),
        }


class PayoutTransferSerializer(serializers.ModelSerializer):
    booking = serializers.IntegerField(source="booking_id", read_only=True)
    amount = serializers.DecimalField(
        max_digits=10, decimal_places=2, help_text="The creator's share sent (net of refunds)."
    )
    fee = serializers.DecimalField(
        max_digits=10, decimal_places=2, help_text="The platform's fee kept on the booking."
    )
    reversed_amount = serializers.DecimalField(
        max_digits=10,
        decimal_places=2,
        help_text="Taken back since (refunds after the transfer, a lost dispute).",
    )
    status = serializers.ChoiceField(
        choices=Transfer.Status.choices,
        help_text="pending (queued), held (dispute open), paid (transferred), cancelled "
        "(never sent: refunded or cancelled meanwhile), failed (Stripe refused; staff retry).",
    )

    class Meta:
        model = Transfer
        fields = [
            "id",
            "booking",
            "amount",
            "currency",
            "fee",
            "status",
            "reversed_amount",
            "created_at",
            "transferred_at",
        ]
        read_only_fields = fields


PayoutTransferPageSerializer = page_of(PayoutTransferSerializer, "PayoutTransferPageSerializer")
