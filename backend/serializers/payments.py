"""Payment endpoints: input and output shapes (CONTRACT.md, "Payment")."""

from rest_framework import serializers


class PaymentIntentCreateInputSerializer(serializers.Serializer):
    booking_id = serializers.IntegerField(min_value=1, max_value=2**63 - 1)


class PaymentIntentOutputSerializer(serializers.Serializer):
    client_secret = serializers.CharField(help_text="Pass to Stripe.js to collect the payment.")
    payment_intent_id = serializers.CharField()
    amount = serializers.DecimalField(
        max_digits=10, decimal_places=2, help_text="Computed by the server from the booking."
    )
    currency = serializers.CharField(help_text="ISO 4217, upper case.")
    publishable_key = serializers.CharField()


class PaymentConfirmInputSerializer(serializers.Serializer):
    payment_intent_id = serializers.RegexField(
        r"^pi_[A-Za-z0-9_]{1,250}$",
        max_length=255,
        error_messages={"invalid": "Not a Stripe PaymentIntent id."},
    )


class PaymentWebhookOutputSerializer(serializers.Serializer):
    received = serializers.BooleanField()
    outcome = serializers.CharField(
        help_text="What the event did: confirmed, paid, failed, refunded, duplicate, ignored, ..."
    )
