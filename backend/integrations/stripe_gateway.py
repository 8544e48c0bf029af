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
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, TypeVar

import stripe
from django.conf import settings

from backend.errors import ErrorCode
from backend.exceptions import IntegrationNotConfigured, IntegrationUnavailable, ValidationFailed
from backend.integrations.lock_guard import assert_no_row_locks

logger = logging.getLogger(__name__)
T = TypeVar("T")

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
    # The Charge of a succeeded intent (`ch_...`): a transfer's `source_transaction`.
    latest_charge: str | None = None


@dataclass(frozen=True)
class Refund:
    id: str
    status: str
    amount: int
    currency: str
    payment_intent: str | None


class MalformedObject(ValidationFailed):
    """A Stripe object without the fields, or with fields of the types, this module reads.

    From a webhook it is the sender's fault (400 `invalid_event`, nothing stored); verify_webhook
    parses the event's object before any service sees it. From an API answer it is Stripe's
    (the calls below turn it into a 502).
    """

    default_code = ErrorCode.INVALID_EVENT


def _text(data: Mapping[str, Any], key: str, *, required: bool = False) -> str | None:
    value = data.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or (required and not value):
        raise MalformedObject(f"The event's object needs `{key}` as a non-empty string.")
    return value


def _minor_units(data: Mapping[str, Any], key: str) -> int:
    value = data.get(key)
    if value is None:
        return 0
    # bool is an int to Python, and 25.5 or "2500" are not amounts Stripe sends.
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise MalformedObject(f"The event's object needs `{key}` as a non-negative integer.")
    return value


def _flag(data: Mapping[str, Any], key: str) -> bool:
    value = data.get(key)
    if value is not None and not isinstance(value, bool):
        raise MalformedObject(f"The event's object needs `{key}` as a boolean.")
    return bool(value)


def _metadata(data: Mapping[str, Any]) -> dict[str, str]:
    value = data.get("metadata")
    if value is None:
        return {}
    if not isinstance(value, Mapping) or any(
        isinstance(item, Mapping | list) for item in value.values()
    ):
        raise MalformedObject("The event's object needs `metadata` as an object of strings.")
    return {str(k): str(v) for k, v in value.items()}


def _intent_id(data: Mapping[str, Any]) -> str | None:
    value = data.get("payment_intent")
    if isinstance(value, Mapping):  # expanded
        return _text(value, "id", required=True)
    return _text(data, "payment_intent")


def intent_from_payload(data: Mapping[str, Any]) -> Intent:
    """Reads a PaymentIntent from an API answer or a webhook event's `data.object`.

    Raises MalformedObject when a field this project reads is missing or of the wrong type.
    """
    if not isinstance(data, Mapping):
        raise MalformedObject("The event's object is not a PaymentIntent.")
    payment_error = data.get("last_payment_error")
    if payment_error is not None and not isinstance(payment_error, Mapping):
        raise MalformedObject("The event's object has a malformed `last_payment_error`.")
    return Intent(
        id=_text(data, "id", required=True) or "",
        status=_text(data, "status") or "",
        amount=_minor_units(data, "amount"),
        currency=(_text(data, "currency") or "").upper(),
        client_secret=_text(data, "client_secret"),
        metadata=_metadata(data),
        has_payment_error=bool(payment_error),
        latest_charge=_latest_charge(data),
    )


def _latest_charge(data: Mapping[str, Any]) -> str | None:
    value = data.get("latest_charge")
    if isinstance(value, Mapping):  # expanded
        return _text(value, "id", required=True)
    return _text(data, "latest_charge")


def refund_from_payload(data: Mapping[str, Any]) -> Refund:
    if not isinstance(data, Mapping):
        raise MalformedObject("The event's object is not a Refund.")
    return Refund(
        id=_text(data, "id", required=True) or "",
        status=_text(data, "status") or "",
        amount=_minor_units(data, "amount"),
        currency=(_text(data, "currency") or "").upper(),
        payment_intent=_intent_id(data),
    )


@dataclass(frozen=True)
class Charge:
    """The part of a Stripe Charge a `charge.refunded` event is read for."""

    id: str
    payment_intent: str | None
    amount: int
    amount_refunded: int
    currency: str
    refunded: bool
    metadata: dict[str, str] = field(default_factory=dict)
    refunds: tuple[Refund, ...] = ()


def charge_from_payload(data: Mapping[str, Any]) -> Charge:
    if not isinstance(data, Mapping):
        raise MalformedObject("The event's object is not a Charge.")
    refund_list = data.get("refunds")
    if refund_list is None:
        refund_items: list[Any] = []
    elif isinstance(refund_list, Mapping) and isinstance(refund_list.get("data") or [], list):
        refund_items = refund_list.get("data") or []
    else:
        raise MalformedObject("The event's object needs `refunds` as a list object.")
    return Charge(
        id=_text(data, "id", required=True) or "",
        payment_intent=_intent_id(data),
        amount=_minor_units(data, "amount"),
        amount_refunded=_minor_units(data, "amount_refunded"),
        currency=(_text(data, "currency") or "").upper(),
        refunded=_flag(data, "refunded"),
        metadata=_metadata(data),
        refunds=tuple(refund_from_payload(item) for item in refund_items),
    )


def check_event_object(event_type: str, data: Mapping[str, Any]) -> None:
    """Parses the object of an event type the services read, so that none of them ever stores
    (or half-applies) an event it could not read. Other types are not read, only acknowledged."""
    if event_type.startswith("payment_intent."):
        intent_from_payload(data)
    elif event_type == "charge.refunded":
        charge_from_payload(data)
    elif event_type in EXTRA_EVENT_PARSERS:
        EXTRA_EVENT_PARSERS[event_type](data)


# Parsers of the event objects other integration modules read (stripe_connect registers
# account.updated and the disputes), so that verify_webhook checks them all the same way.
EXTRA_EVENT_PARSERS: dict[str, Callable[[Mapping[str, Any]], object]] = {}


def _from_answer(parse: Callable[[Mapping[str, Any]], T], answer: Any, action: str) -> T:
    """Parses an API answer; one Stripe should never send malformed is its failure (502)."""
    try:
        return parse(answer.to_dict())
    except MalformedObject as error:
        logger.error("stripe answered a malformed object to %s: %s", action, error.message)
        raise IntegrationUnavailable(
            "The payment provider sent an unusable answer; please try again in a moment.",
            code="payment_provider_unavailable",
        ) from error


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
    transfer_group: str | None = None,
) -> Intent:
    """Creates a PaymentIntent for `amount` minor units. The same key returns the same intent.

    `transfer_group` ties the charge to the transfer of the creator's share made later.
    """
    client = get_client()
    params: dict[str, Any] = {
        "amount": amount,
        "currency": currency.lower(),
        "metadata": metadata,
    }
    if transfer_group:
        params["transfer_group"] = transfer_group
    try:
        intent = client.v1.payment_intents.create(
            params=params,  # type: ignore[arg-type]
            options={"idempotency_key": idempotency_key},
        )
    except stripe.StripeError as error:
        raise _translate(error, "create a payment intent") from error
    return _from_answer(intent_from_payload, intent, "read a payment intent")


def retrieve_payment_intent(intent_id: str) -> Intent:
    client = get_client()
    try:
        intent = client.v1.payment_intents.retrieve(intent_id)
    except stripe.StripeError as error:
        raise _translate(error, "retrieve a payment intent") from error
    return _from_answer(intent_from_payload, intent, "read a payment intent")


def cancel_payment_intent(intent_id: str) -> Intent:
    """Cancels an intent that has not been paid, so that it can no longer be paid."""
    client = get_client()
    try:
        intent = client.v1.payment_intents.cancel(intent_id)
    except stripe.StripeError as error:
        raise _translate(error, "cancel a payment intent") from error
    return _from_answer(intent_from_payload, intent, "read a payment intent")


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
    *,
    payment_intent_id: str,
    metadata: dict[str, str],
    idempotency_key: str,
    amount: int | None = None,
) -> Refund:
    """Refunds `amount` minor units of a PaymentIntent's charge (None: all that is left).
    The same key returns the same refund."""
    client = get_client()
    params: dict[str, Any] = {"payment_intent": payment_intent_id, "metadata": metadata}
    if amount is not None:
        params["amount"] = amount
    try:
        refund = client.v1.refunds.create(
            params=params,  # type: ignore[arg-type]
            options={"idempotency_key": idempotency_key},
        )
    except stripe.StripeError as error:
        raise _translate(error, "refund a payment") from error
    return _from_answer(refund_from_payload, refund, "read a refund")


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


def verify_webhook(
    *, payload: bytes, signature: str | None, secret: str | None = None
) -> dict[str, Any]:
    """Checks the Stripe-Signature header against the raw body; returns the event as a dict.

    A missing or wrong signature, or one signed more than 5 minutes ago or ahead of our clock,
    is a 400. `secret`: the endpoint's signing secret (default STRIPE_WEBHOOK_SECRET).
    """
    secret = secret or settings.STRIPE_WEBHOOK_SECRET
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
    except (ValueError, RecursionError) as error:
        raise ValidationFailed("The payload is not JSON.", code="invalid_payload") from error
    if (
        not isinstance(event, dict)
        or not isinstance(event.get("id"), str)
        or not isinstance(event.get("type"), str)
        or not isinstance(event.get("data"), dict)
        or not isinstance(event["data"].get("object"), dict)
    ):
        raise ValidationFailed("The payload is not a Stripe event.", code="invalid_payload")
    check_event_object(event["type"], event["data"]["object"])
    return event
