"""Outgoing webhooks API (CONTRACT.md "Outgoing webhooks"): thin views over
services/selectors/webhooks. A user sees only their own subscriptions (anyone else's: 404);
creating one needs a creator or staff account."""

from typing import cast

from drf_yasg.utils import no_body, swagger_auto_schema
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from backend.models import User, WebhookSubscription
from backend.schema import PAGE_PARAMS
from backend.selectors import webhooks as selectors
from backend.serializers.webhooks import (
    WebhookDeliveryPageSerializer,
    WebhookDeliverySerializer,
    WebhookSubscriptionCreatedSerializer,
    WebhookSubscriptionPageSerializer,
    WebhookSubscriptionSerializer,
    WebhookSubscriptionUpdateSerializer,
    WebhookSubscriptionWriteSerializer,
)
from backend.services import webhooks as services

SIGNATURE_HELP = (
    "Each delivery is a POST of JSON `{id, type, created, data}` with headers `Webhook-Id` "
    "(the event id: de-duplicate on it) and `Webhook-Signature: t=<unix>,v1=<hex "
    'HMAC-SHA256(secret, "<t>.<raw body>")>`. 2xx = delivered; anything else is retried with '
    "exponential backoff for up to 3 days; 410 switches the subscription off."
)


class WebhookViewSet(viewsets.GenericViewSet):
    # Only tells drf-yasg the model (integer ids); the endpoints go through services/selectors.
    queryset = WebhookSubscription.objects.none()
    serializer_class = WebhookSubscriptionSerializer
    lookup_value_regex = r"[0-9]{1,18}"

    @property
    def owner(self) -> User:
        # IsAuthenticated ran first.
        return cast(User, self.request.user)

    @swagger_auto_schema(
        operation_summary="My webhook subscriptions",
        operation_description="The signed-in user's subscriptions, oldest first (no secrets).",
        manual_parameters=PAGE_PARAMS,
        responses={200: WebhookSubscriptionPageSerializer},
    )
    def list(self, request):
        page = self.paginate_queryset(selectors.webhook_subscriptions_of(owner=self.owner))
        return self.get_paginated_response(WebhookSubscriptionSerializer(page, many=True).data)

    @swagger_auto_schema(
        operation_summary="Subscribe an endpoint to events (creator or staff)",
        operation_description=(
            "`url` must be https and resolve only to public addresses. The answer carries the "
            "signing `secret`, shown only here. A creator's subscription receives the events "
            f"of their own sessions; staff's receive all. {SIGNATURE_HELP}"
        ),
        request_body=WebhookSubscriptionWriteSerializer,
        responses={201: WebhookSubscriptionCreatedSerializer},
    )
    def create(self, request):
        payload = WebhookSubscriptionWriteSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        subscription = services.webhook_subscription_create(
            owner=self.owner,
            url=data["url"],
            events=data["events"],
            description=data["description"],
        )
        return Response(
            WebhookSubscriptionCreatedSerializer(subscription).data,
            status=status.HTTP_201_CREATED,
        )

    @swagger_auto_schema(
        operation_summary="One of my webhook subscriptions",
        operation_description="Anyone else's is 404. The secret is not shown again.",
        responses={200: WebhookSubscriptionSerializer},
    )
    def retrieve(self, request, pk=None):
        subscription = selectors.webhook_subscription_of(owner=self.owner, subscription_id=int(pk))
        return Response(WebhookSubscriptionSerializer(subscription).data)

    @swagger_auto_schema(
        operation_summary="Change a webhook subscription (url, events, description, is_active)",
        operation_description=(
            "Any subset of the fields. A new `url` is checked like at creation. `is_active: true` "
            "switches a subscription back on after a 410 switched it off."
        ),
        request_body=WebhookSubscriptionUpdateSerializer,
        responses={200: WebhookSubscriptionSerializer},
    )
    def partial_update(self, request, pk=None):
        payload = WebhookSubscriptionUpdateSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        subscription = services.webhook_subscription_update(
            owner=self.owner, subscription_id=int(pk), data=dict(payload.validated_data)
        )
        return Response(WebhookSubscriptionSerializer(subscription).data)

    @swagger_auto_schema(
        operation_summary="Delete a webhook subscription and its delivery log",
        operation_description="Deliveries still queued for it are dropped.",
        responses={204: "Deleted."},
    )
    def destroy(self, request, pk=None):
        services.webhook_subscription_delete(owner=self.owner, subscription_id=int(pk))
        return Response(status=status.HTTP_204_NO_CONTENT)

    @swagger_auto_schema(
        operation_summary="The delivery log of a subscription (30 days), newest first",
        operation_description=(
            "Each delivery: its event, status (`pending`, `delivered`, `failed`, `cancelled`), "
            "attempts, and the last attempt's response status, time and first bytes."
        ),
        manual_parameters=PAGE_PARAMS,
        responses={200: WebhookDeliveryPageSerializer},
    )
    @action(detail=True, methods=["get"])
    def deliveries(self, request, pk=None):
        subscription = selectors.webhook_subscription_of(owner=self.owner, subscription_id=int(pk))
        page = self.paginate_queryset(selectors.webhook_deliveries_of(subscription=subscription))
        return self.get_paginated_response(WebhookDeliverySerializer(page, many=True).data)

    @swagger_auto_schema(
        operation_summary="Send a `ping` event to this subscription's endpoint",
        operation_description=(
            "Queues one `ping` event (`data: {webhook: {id}}`) for this subscription only, "
            "signed like any event; the answer is the delivery as it stands (see deliveries/)."
        ),
        request_body=no_body,
        responses={202: WebhookDeliverySerializer},
    )
    @action(detail=True, methods=["post"])
    def ping(self, request, pk=None):
        delivery = services.webhook_ping(owner=self.owner, subscription_id=int(pk))
        delivery.refresh_from_db()
        return Response(WebhookDeliverySerializer(delivery).data, status=status.HTTP_202_ACCEPTED)
