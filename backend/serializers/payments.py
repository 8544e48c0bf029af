"""Payment endpoints: input and output shapes (CONTRACT.md, "Payment")."""

from rest_framework import serializers


class PaymentIntentCreateInputSerializer(serializers.Serializer):
    booking_id = serializers.IntegerField(min_value=1, max_value=2**63 - 1)


class PaymentIntentOutputSerializer(serializers.Serializer):
    client_secret = serializers.CharField(
        help_text="Pass to Stripe.js to collect the payment (or, with setup_intent_id, to save "
        "the card: stripe.confirmCardSetup)."
    )
    payment_intent_id = serializers.CharField(
        allow_null=True, help_text="Null when the booking saves its card instead (SetupIntent)."
    )
    setup_intent_id = serializers.CharField(
        allow_null=True,
        help_text="A booking of a session with a minimum, before its decision: the card is saved "
        "now and charged only if the session runs. Null otherwise.",
    )
    amount = serializers.DecimalField(
        max_digits=10, decimal_places=2, help_text="Computed by the server from the booking."
    )
    currency = serializers.CharField(help_text="ISO 4217, upper case.")
    publishable_key = serializers.CharField()


class PaymentConfirmInputSerializer(serializers.Serializer):
    payment_intent_id = serializers.RegexField(
        r"^pi_[A-Za-z0-9_]{1,250}$",
        max_length=255,
        required=False,
        error_messages={"invalid": "Not a Stripe PaymentIntent id."},
    )
    setup_intent_id = serializers.RegexField(
        r"^seti_[A-Za-z0-9_]{1,250}$",
        max_length=255,
        required=False,
        help_text="After saving the card of a booking that waits for its session's minimum.",
        error_messages={"invalid": "Not a Stripe SetupIntent id."},
    )

    def validate(self, attrs: dict) -> dict:
        if bool(attrs.get("payment_intent_id")) == bool(attrs.get("setup_intent_id")):
            raise serializers.ValidationError(
                {"payment_intent_id": ["Give payment_intent_id or setup_intent_id (one)."]}
            )
        return attrs


class PaymentWebhookOutputSerializer(serializers.Serializer):
    received = serializers.BooleanField()
    outcome = serializers.CharField(
        help_text="What the event did: confirmed, paid, failed, refunded, duplicate, ignored, ..."
    )
