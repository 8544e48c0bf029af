"""Saved cards and off-session charges: Customers, SetupIntents, PaymentMethod detach, and the
off-session PaymentIntent of a session that ran (CONTRACT.md, "Sessions that run only if
enough people book").

Same rules as stripe_gateway (whose client, error translation and payload helpers it uses):
plain values in, dataclasses out, no Stripe exception leaves the module, no call while this
connection holds a row lock, and every call that creates something carries our idempotency key.
"""

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import stripe

from backend.integrations.stripe_gateway import (
    EXTRA_EVENT_PARSERS,
    Intent,
    MalformedObject,
    _from_answer,
    _metadata,
    _text,
    _translate,
    get_client,
    intent_from_payload,
)

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SetupIntent:
    """The part of a Stripe SetupIntent this project relies on."""

    id: str
    status: str
    client_secret: str | None = None
    customer: str | None = None
    payment_method: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)


def _object_id(data: Mapping[str, Any], key: str) -> str | None:
    value = data.get(key)
    if isinstance(value, Mapping):  # expanded
        return _text(value, "id", required=True)
    return _text(data, key)


def setup_intent_from_payload(data: Mapping[str, Any]) -> SetupIntent:
    if not isinstance(data, Mapping):
        raise MalformedObject("The event's object is not a SetupIntent.")
    return SetupIntent(
        id=_text(data, "id", required=True) or "",
        status=_text(data, "status") or "",
        client_secret=_text(data, "client_secret"),
        customer=_object_id(data, "customer"),
        payment_method=_object_id(data, "payment_method"),
        metadata=_metadata(data),
    )


EXTRA_EVENT_PARSERS["setup_intent.succeeded"] = setup_intent_from_payload


def create_customer(*, metadata: dict[str, str], idempotency_key: str) -> str:
    """A Stripe Customer to save a card on (off-session charges need one); its id."""
    client = get_client()
    try:
        customer = client.v1.customers.create(
            params={"metadata": metadata}, options={"idempotency_key": idempotency_key}
        )
    except stripe.StripeError as error:
        raise _translate(error, "create a customer") from error
    return str(customer.id)


def create_setup_intent(
    *, customer: str, metadata: dict[str, str], idempotency_key: str
) -> SetupIntent:
    """A SetupIntent that saves the customer's card for a later off-session charge."""
    client = get_client()
    try:
        setup = client.v1.setup_intents.create(
            params={  # type: ignore[arg-type]
                "customer": customer,
                "usage": "off_session",
                "payment_method_types": ["card"],
                "metadata": metadata,
            },
            options={"idempotency_key": idempotency_key},
        )
    except stripe.StripeError as error:
        raise _translate(error, "create a setup intent") from error
    return _from_answer(setup_intent_from_payload, setup, "read a setup intent")


def retrieve_setup_intent(setup_intent_id: str) -> SetupIntent:
    client = get_client()
    try:
        setup = client.v1.setup_intents.retrieve(setup_intent_id)
    except stripe.StripeError as error:
        raise _translate(error, "retrieve a setup intent") from error
    return _from_answer(setup_intent_from_payload, setup, "read a setup intent")


def cancel_setup_intent(setup_intent_id: str) -> None:
    """Cancels a SetupIntent the customer has not completed (nothing left to save the card
    for). One already succeeded or cancelled is left as it is."""
    client = get_client()
    try:
        client.v1.setup_intents.cancel(setup_intent_id)
    except stripe.InvalidRequestError as error:
        logger.info("setup intent %s not cancelled: %s", setup_intent_id, error.user_message)
    except stripe.StripeError as error:
        raise _translate(error, "cancel a setup intent") from error


def detach_payment_method(payment_method_id: str) -> None:
    """Releases a saved card: it can no longer be charged. Detaching one already detached is
    Stripe's 400, which is the outcome we want, so it counts as done."""
    client = get_client()
    try:
        client.v1.payment_methods.detach(payment_method_id)
    except stripe.InvalidRequestError as error:
        logger.info("payment method %s not detached: %s", payment_method_id, error.user_message)
    except stripe.StripeError as error:
        raise _translate(error, "detach a payment method") from error


@dataclass(frozen=True)
class OffSessionCharge:
    """The outcome of charging a saved card without the customer: the intent as Stripe left it
    and, when it did not succeed, Stripe's error code (`card_declined`,
    `authentication_required`, ...)."""

    intent: Intent
    failure_code: str | None = None


def charge_off_session(
    *,
    amount: int,
    currency: str,
    customer: str,
    payment_method: str,
    metadata: dict[str, str],
    idempotency_key: str,
    transfer_group: str | None = None,
) -> OffSessionCharge:
    """Creates and confirms a PaymentIntent on the saved card, the customer not present.

    A decline or a bank that wants the customer (3-D Secure) is an outcome, not an error: the
    intent stays open (`requires_payment_method` / `requires_action`) for the customer to pay
    on-session. The same key returns the same outcome (Stripe replays a declined attempt too).
    """
    client = get_client()
    params: dict[str, Any] = {
        "amount": amount,
        "currency": currency.lower(),
        "customer": customer,
        "payment_method": payment_method,
        "off_session": True,
        "confirm": True,
        "metadata": metadata,
    }
    if transfer_group:
        params["transfer_group"] = transfer_group
    try:
        intent = client.v1.payment_intents.create(
            params=params,  # type: ignore[arg-type]
            options={"idempotency_key": idempotency_key},
        )
    except stripe.CardError as error:
        body = error.json_body if isinstance(error.json_body, dict) else {}
        details = body.get("error") or {}
        intent_data = details.get("payment_intent") if isinstance(details, dict) else None
        if not isinstance(intent_data, Mapping):
            raise _translate(error, "charge a saved card") from error
        logger.info("off-session charge refused: %s", error.code)
        return OffSessionCharge(
            intent=_parse_intent(intent_data), failure_code=str(error.code or "card_declined")
        )
    except stripe.StripeError as error:
        raise _translate(error, "charge a saved card") from error
    parsed = _from_answer(intent_from_payload, intent, "read a payment intent")
    if parsed.status == "succeeded":
        return OffSessionCharge(intent=parsed)
    return OffSessionCharge(intent=parsed, failure_code=parsed.status or "incomplete")


def _parse_intent(data: Mapping[str, Any]) -> Intent:
    try:
        return intent_from_payload(data)
    except MalformedObject as error:
        raise _translate(stripe.APIError(error.message), "read a payment intent") from error
