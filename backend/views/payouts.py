"""Payout endpoints (CONTRACT.md, "Creators get paid"): thin views over services/selectors.

Creators only (401 without a token, 403 for a user account). The Connect webhook is the
payment webhook's twin, verified with STRIPE_CONNECT_WEBHOOK_SECRET.
"""

from django.conf import settings
from django.utils.decorators import method_decorator
from django.views.decorators.csrf import csrf_exempt
from drf_yasg import openapi
from drf_yasg.utils import swagger_auto_schema
from rest_framework.generics import GenericAPIView
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from backend.models import Transfer
from backend.permissions import IsCreator
from backend.schema import PAGE_PARAMS
from backend.selectors import payouts as selectors
from backend.serializers.payments import PaymentWebhookOutputSerializer
from backend.serializers.payouts import (
    PayoutAccountSerializer,
    PayoutOnboardingInputSerializer,
    PayoutOnboardingOutputSerializer,
    PayoutTransferPageSerializer,
    PayoutTransferSerializer,
)
from backend.services.payments import payment_handle_webhook
from backend.services.payouts import payouts_onboarding

CREATOR_ERRORS = {401: "No or invalid token.", 403: "Signed in, but not a creator."}


class PayoutOnboardingView(APIView):
    permission_classes = [IsAuthenticated, IsCreator]

    @swagger_auto_schema(
        operation_id="payouts_onboarding",
        operation_summary="Set up payouts: a Stripe onboarding link (Express account)",
        operation_description=(
            "Creates your Stripe Express account on the first call (later calls reuse it) and "
            "answers a single-use Account Link to Stripe's hosted onboarding. `return_url` and "
            "`refresh_url` must be on one of the app's origins (400 `invalid_redirect_url`). "
            "503 `payments_not_configured` without Stripe keys; 502 when Stripe fails."
        ),
        request_body=PayoutOnboardingInputSerializer,
        responses={
            200: PayoutOnboardingOutputSerializer,
            400: "Invalid URL, or not on an allowed origin.",
            **CREATOR_ERRORS,
            502: "Stripe is unavailable; nothing was changed.",
            503: "Payments are not configured.",
        },
        tags=["payouts"],
    )
    def post(self, request):
        payload = PayoutOnboardingInputSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        link = payouts_onboarding(creator=request.user, **payload.validated_data)
        return Response(PayoutOnboardingOutputSerializer(link).data)


class PayoutAccountView(APIView):
    permission_classes = [IsAuthenticated, IsCreator]

    @swagger_auto_schema(
        operation_id="payouts_account",
        operation_summary="Your Stripe account's state (kept current by account.updated)",
        operation_description=(
            "Before onboarding `account_id` is null and every flag false. A paid session can be "
            "published once `charges_enabled` is true (when Stripe is configured)."
        ),
        responses={200: PayoutAccountSerializer, **CREATOR_ERRORS},
        tags=["payouts"],
    )
    def get(self, request):
        account = selectors.account_for(creator=request.user)
        return Response(PayoutAccountSerializer(PayoutAccountSerializer.from_account(account)).data)


class PayoutTransferListView(GenericAPIView):
    permission_classes = [IsAuthenticated, IsCreator]
    serializer_class = PayoutTransferSerializer
    queryset = Transfer.objects.none()

    @swagger_auto_schema(
        operation_id="payouts_transfers",
        operation_summary="Your transfers: one per booking, newest first",
        operation_description=(
            "The creator's share of each booking, sent once the session ended "
            "PAYOUT_DELAY_HOURS ago. Paginated; a fixed number of queries."
        ),
        manual_parameters=PAGE_PARAMS,
        responses={200: PayoutTransferPageSerializer, **CREATOR_ERRORS},
        tags=["payouts"],
    )
    def get(self, request):
        page = self.paginate_queryset(selectors.transfers_for(creator=request.user))
        return self.get_paginated_response(PayoutTransferSerializer(page, many=True).data)


@method_decorator(csrf_exempt, name="dispatch")
class ConnectWebhookView(APIView):
    """Stripe's Connect events (account.updated), on their own endpoint and signing secret."""

    authentication_classes = []
    permission_classes = [AllowAny]
    throttle_classes = []

    @swagger_auto_schema(
        operation_id="payment_webhook_connect",
        operation_summary="Stripe Connect webhook (signed with STRIPE_CONNECT_WEBHOOK_SECRET)",
        operation_description=(
            "For a Connect endpoint in Stripe (events of connected accounts): handles "
            "account.updated (and anything the payment webhook handles); other types are "
            "acknowledged and ignored. Without STRIPE_CONNECT_WEBHOOK_SECRET it verifies with "
            "STRIPE_WEBHOOK_SECRET. A redelivered event has no second effect."
        ),
        security=[],
        manual_parameters=[
            openapi.Parameter(
                "Stripe-Signature",
                openapi.IN_HEADER,
                type=openapi.TYPE_STRING,
                required=True,
                description="Stripe's `t=<unix time>,v1=<HMAC-SHA256>` over the raw body.",
            )
        ],
        request_body=openapi.Schema(type=openapi.TYPE_OBJECT, description="A Stripe event."),
        responses={
            200: PaymentWebhookOutputSerializer,
            400: "Bad or stale signature, or not a Stripe event; nothing was changed.",
            503: "Payments are not configured.",
        },
        tags=["payment"],
    )
    def post(self, request):
        outcome = payment_handle_webhook(
            payload=request.body,
            signature=request.headers.get("Stripe-Signature"),
            secret=settings.STRIPE_CONNECT_WEBHOOK_SECRET or None,
        )
        return Response(PaymentWebhookOutputSerializer({"received": True, "outcome": outcome}).data)
