"""Payment endpoints: thin views over services.payments."""

from django.utils.decorators import method_decorator
from django.views.decorators.csrf import csrf_exempt
from drf_yasg import openapi
from drf_yasg.utils import swagger_auto_schema
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from backend.models import Booking
from backend.serializers.bookings import BookingSerializer
from backend.serializers.payments import (
    PaymentConfirmInputSerializer,
    PaymentIntentCreateInputSerializer,
    PaymentIntentOutputSerializer,
    PaymentWebhookOutputSerializer,
)
from backend.services.payments import payment_handle_webhook
from backend.services.scheduled_payments import payment_confirm, payment_start
from backend.views.idempotency import IDEMPOTENCY_KEY_PARAMETER, idempotent

ERROR_RESPONSES = {
    400: "Invalid input, or Stripe refused the request (its message is the detail).",
    404: "No such booking or payment of yours.",
    409: "The booking cannot be paid (not pending, already paid, hold expired).",
    502: "Stripe is unavailable or timed out; nothing was changed.",
    503: "Payments are not configured.",
}


class PaymentCreateIntentView(APIView):
    @swagger_auto_schema(
        operation_summary="Start paying a booking: a Stripe PaymentIntent",
        operation_description=(
            "For the caller's own pending, unpaid booking within its hold. The amount comes from "
            "the booking. Calling again returns the same open intent."
        ),
        request_body=PaymentIntentCreateInputSerializer,
        manual_parameters=[IDEMPOTENCY_KEY_PARAMETER],
        responses={200: PaymentIntentOutputSerializer, **ERROR_RESPONSES},
    )
    @idempotent
    def post(self, request):
        serializer = PaymentIntentCreateInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        intent = payment_start(
            user=request.user, booking_id=serializer.validated_data["booking_id"]
        )
        return Response(PaymentIntentOutputSerializer(intent).data)


class PaymentConfirmView(APIView):
    @swagger_auto_schema(
        operation_summary="After paying: apply the PaymentIntent's status as Stripe reports it",
        operation_description=(
            "Call it when Stripe.js reports the payment (or to check on it): the server asks "
            "Stripe for the intent's real status, never the client's word, and answers the "
            "booking: `confirmed` + `paid` on success, `payment_status: failed` after a decline "
            "(the hold keeps the seats; pay again with a new card). The webhook applies the same "
            "result if the client never comes back. 404: not one of your intents."
        ),
        request_body=PaymentConfirmInputSerializer,
        responses={200: BookingSerializer, **ERROR_RESPONSES},
    )
    def post(self, request):
        serializer = PaymentConfirmInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        booking = payment_confirm(
            user=request.user,
            payment_intent_id=serializer.validated_data.get("payment_intent_id"),
            setup_intent_id=serializer.validated_data.get("setup_intent_id"),
        )
        booking = Booking.objects.select_related("session__creator", "user").get(pk=booking.pk)
        return Response(BookingSerializer(booking, context={"request": request}).data)


# Stripe signs the raw body; it has no JWT and no CSRF token, and must never be throttled
# (a dropped event is redelivered for days, but late).
@method_decorator(csrf_exempt, name="dispatch")
class PaymentWebhookView(APIView):
    authentication_classes = []
    permission_classes = [AllowAny]
    throttle_classes = []

    @swagger_auto_schema(
        operation_summary="Stripe webhook (signed with STRIPE_WEBHOOK_SECRET)",
        operation_description=(
            "Handles payment_intent.succeeded, payment_intent.payment_failed, "
            "payment_intent.canceled and charge.refunded; other types are acknowledged and "
            "ignored. A redelivered event has no second effect."
        ),
        security=[],
        manual_parameters=[
            openapi.Parameter(
                "Stripe-Signature",
                openapi.IN_HEADER,
                type=openapi.TYPE_STRING,
                required=True,
                description="Stripe's `t=<unix time>,v1=<HMAC-SHA256>` over the raw body, "
                "signed with STRIPE_WEBHOOK_SECRET.",
            )
        ],
        request_body=openapi.Schema(type=openapi.TYPE_OBJECT, description="A Stripe event."),
        responses={
            200: PaymentWebhookOutputSerializer,
            400: "Bad or stale signature, or not a Stripe event; nothing was changed.",
            502: "A refund Stripe had to make failed; Stripe will redeliver.",
            503: "Payments are not configured.",
        },
    )
    def post(self, request):
        outcome = payment_handle_webhook(
            payload=request.body, signature=request.headers.get("Stripe-Signature")
        )
        return Response(PaymentWebhookOutputSerializer({"received": True, "outcome": outcome}).data)
