"""Everything that talks to Stripe, and the only module that imports `stripe`.

Services call these functions with plain values and get plain dataclasses back; Stripe's
exceptions never leave this module. They become domain errors:

- a declined card or an invalid request: ValidationFailed (400) with Stripe's message;
- Stripe down, timing out, answering 5xx or refusing our credentials: IntegrationUnavailable (502);
- no STRIPE_SECRET_KEY (or no STRIPE_WEBHOOK_SECRET for webhooks): IntegrationNotConfigured (503).

`STRIPE_API_BASE`, when set, replaces https://api.stripe.com, so tests and offline development
can point the real client at a stand-in on loopback.
"""

import json
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import stripe
from django.conf import settings

from backend.exceptions import IntegrationNotConfigured, IntegrationUnavailable, ValidationFailed
from backend.integrations.lock_guard import assert_no_row_locks

logger = logging.getLogger(__name__)

NOT_CONFIGURED_MESSAGE = "payments are not configured"

# PaymentIntent statuses after which the intent can no longer take a payment.
INTENT_FINAL_STATUSES = frozenset({"succeeded", "canceled"})
REFUND_FINAL_STATUSES = frozenset({"succeeded", "failed", "canceled"})


@dataclass(frozen=True)
class Intent:
    """The part of a Stripe PaymentIntent this project relies on."""

    id: str
    status: str
    amount: int  # minor units, as Stripe holds it
    currency: str  # upper case, as we store it
    client_secret: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    # Stripe's last_payment_error is set when the latest attempt was declined.
    has_payment_error: bool = False


@dataclass(frozen=True)
class Refund:
    id: str
    status: str
    amount: int
    currency: str
    payment_intent: str | None


def intent_from_payload(data: Mapping[str, Any]) -> Intent:
    """Reads a PaymentIntent from an API answer or a webhook event's `data.object`."""
    return Intent(
        id=str(data["id"]),
        status=str(data.get("status") or ""),
        amount=int(data.get("amount") or 0),
        currency=str(data.get("currency") or "").upper(),
        client_secret=data.get("client_secret"),
        metadata={str(k): str(v) for k, v in (data.get("metadata") or {}).items()},
        has_payment_error=bool(data.get("last_payment_error")),
    )


def refund_from_payload(data: Mapping[str, Any]) -> Refund:
    payment_intent = data.get("payment_intent")
    if isinstance(payment_intent, Mapping):  # expanded
        payment_intent = payment_intent.get("id")
    return Refund(
        id=str(data["id"]),
        status=str(data.get("status") or ""),
        amount=int(data.get("amount") or 0),
        currency=str(data.get("currency") or "").upper(),
        payment_intent=payment_intent,
    )


def is_configured() -> bool:
    return bool(settings.STRIPE_SECRET_KEY)


def publishable_key() -> str:
    return settings.STRIPE_PUBLISHABLE_KEY


def ensure_configured() -> None:
    if not is_configured():
        raise IntegrationNotConfigured(NOT_CONFIGURED_MESSAGE, code="payments_not_configured")


@lru_cache(maxsize=4)
def _client_for(
    api_key: str, api_base: str, timeout: float, max_network_retries: int
) -> stripe.StripeClient:
    # One client (and one pooled HTTP session per thread) per configuration; tests that change
    # the settings get a fresh one.
    return stripe.StripeClient(
        api_key,
        base_addresses={"api": api_base} if api_base else None,
        max_network_retries=max_network_retries,
        # (connect, read) seconds: the default is 80 s, far too long to keep a request waiting.
        http_client=stripe.RequestsClient(timeout=(min(timeout, 5.0), timeout)),
    )


def get_client() -> stripe.StripeClient:
    """The client for one call to Stripe; refuses while this connection holds row locks."""
    ensure_configured()
    assert_no_row_locks("Stripe")
    return _client_for(
        settings.STRIPE_SECRET_KEY,
        settings.STRIPE_API_BASE.rstrip("/"),
        float(settings.STRIPE_TIMEOUT_SECONDS),
        int(settings.STRIPE_MAX_NETWORK_RETRIES),
    )


def _translate(error: stripe.StripeError, action: str) -> Exception:
    """Turns a Stripe exception into the domain error the API answers with."""
    if isinstance(error, stripe.CardError | stripe.InvalidRequestError):
        logger.info("stripe refused to %s: %s", action, error.user_message)
        return ValidationFailed(
            error.user_message or "The payment provider rejected the request.",
            code="payment_rejected",
        )
    if isinstance(error, stripe.APIConnectionError):
        logger.warning("stripe unreachable while trying to %s: %s", action, error)
    else:
        # 5xx, rate limits, a bad key, an idempotency clash: not the client's fault.
        logger.error(
            "stripe failed to %s: %s %s", action, error.__class__.__name__, error.user_message
        )
    return IntegrationUnavailable(
        "The payment provider is unavailable; please try again in a moment.",
        code="payment_provider_unavailable",
    )


def create_payment_intent(
    *,
    amount: int,
    currency: str,
    metadata: dict[str, str],
    idempotency_key: str,
) -> Intent:
    """Creates a PaymentIntent for `amount` minor units. The same key returns the same intent."""
    client = get_client()
    params: dict[str, Any] = {
        "amount": amount,
        "currency": currency.lower(),
        "metadata": metadata,
    }
    try:
        intent = client.v1.payment_intents.create(
            params=params,  # type: ignore[arg-type]
            options={"idempotency_key": idempotency_key},
        )
    except stripe.StripeError as error:
        raise _translate(error, "create a payment intent") from error
    return intent_from_payload(intent.to_dict())


def retrieve_payment_intent(intent_id: str) -> Intent:
    client = get_client()
    try:
        intent = client.v1.payment_intents.retrieve(intent_id)
    except stripe.StripeError as error:
        raise _translate(error, "retrieve a payment intent") from error
    return intent_from_payload(intent.to_dict())


def cancel_payment_intent(intent_id: str) -> Intent:
    """Cancels an intent that has not been paid, so that it can no longer be paid."""
    client = get_client()
    try:
        intent = client.v1.payment_intents.cancel(intent_id)
    except stripe.StripeError as error:
        raise _translate(error, "cancel a payment intent") from error
    return intent_from_payload(intent.to_dict())


def is_test_mode() -> bool:
    """A test-mode key (or the stand-in's): charges are pretend, test payment methods work."""
    return settings.STRIPE_SECRET_KEY.startswith("sk_test_")


def confirm_payment_intent_with_test_card(intent_id: str, *, payment_method: str) -> Intent:
    """Pays an intent server-side with one of Stripe's test payment methods (`pm_card_visa`).

    Only for demo data in test mode: in production the customer confirms with Stripe.js.
    """
    if not is_test_mode():
        raise ValidationFailed(
            "Test cards are accepted only with a test-mode Stripe key.", code="not_test_mode"
        )
    client = get_client()
    try:
        intent = client.v1.payment_intents.confirm(
            intent_id,
            params={"payment_method": payment_method},
        )
    except stripe.StripeError as error:
        raise _translate(error, "confirm a payment intent") from error
    return intent_from_payload(intent.to_dict())


def create_refund(
    *, payment_intent_id: str, metadata: dict[str, str], idempotency_key: str
) -> Refund:
    """Refunds the whole of a PaymentIntent's charge. The same key returns the same refund."""
    client = get_client()
    try:
        refund = client.v1.refunds.create(
            params={"payment_intent": payment_intent_id, "metadata": metadata},
            options={"idempotency_key": idempotency_key},
        )
    except stripe.StripeError as error:
        raise _translate(error, "refund a payment") from error
    return refund_from_payload(refund.to_dict())


# Stripe's library refuses a signed timestamp older than its tolerance but accepts one in the
# future, which would keep a captured signature replayable for as long as its sender chose.
# Clocks disagree by seconds, not minutes: the same 5 minutes ahead is plenty.
WEBHOOK_FUTURE_TOLERANCE_SECONDS = 300


def _signed_timestamp(signature: str) -> int | None:
    """The `t=` of a Stripe-Signature header (`t=1700000000,v1=...`), parsed exactly as the
    stripe library parses it (the first item named exactly `t`, no whitespace stripped), so the
    timestamp checked here is the one its signature was verified with."""
    for item in signature.split(","):
        key, _, value = item.partition("=")
        if key == "t":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def verify_webhook(*, payload: bytes, signature: str | None) -> dict[str, Any]:
    """Checks the Stripe-Signature header against the raw body; returns the event as a dict.

    A missing or wrong signature, or one signed more than 5 minutes ago or ahead of our clock,
    is a 400.
    """
    secret = settings.STRIPE_WEBHOOK_SECRET
    if not secret:
        raise IntegrationNotConfigured(NOT_CONFIGURED_MESSAGE, code="payments_not_configured")
    try:
        stripe.WebhookSignature.verify_header(
            payload, signature, secret, stripe.Webhook.DEFAULT_TOLERANCE
        )
    except stripe.SignatureVerificationError as error:
        logger.warning("stripe webhook with a bad signature: %s", error.user_message)
        raise ValidationFailed("Invalid Stripe signature.", code="invalid_signature") from error
    except UnicodeDecodeError as error:
        raise ValidationFailed("The payload is not UTF-8.", code="invalid_payload") from error
    # verify_header accepted it, so the header is a string with a signed `t=`.
    signed_at = _signed_timestamp(signature or "")
    if signed_at is None or signed_at > time.time() + WEBHOOK_FUTURE_TOLERANCE_SECONDS:
        logger.warning("stripe webhook signed with a timestamp in the future: %s", signed_at)
        raise ValidationFailed("Invalid Stripe signature.", code="invalid_signature")
    try:
        event = json.loads(payload)
    except ValueError as error:
        raise ValidationFailed("The payload is not JSON.", code="invalid_payload") from error
    if (
        not isinstance(event, dict)
        or not isinstance(event.get("id"), str)
        or not isinstance(event.get("type"), str)
        or not isinstance(event.get("data"), dict)
        or not isinstance(event["data"].get("object"), dict)
    ):
        raise ValidationFailed("The payload is not a Stripe event.", code="invalid_payload")
    return event
