"""Stripe Connect calls: Express accounts, onboarding links, transfers and their reversals,
and the Connect objects webhooks carry (accounts, disputes).

Same rules as stripe_gateway (whose client, error translation and payload helpers it uses):
plain values in, dataclasses out, no Stripe exception leaves the module, no call while this
connection holds a row lock, and every call that moves money carries our idempotency key.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import stripe

from backend.integrations.stripe_gateway import (
    EXTRA_EVENT_PARSERS,
    MalformedObject,
    _flag,
    _from_answer,
    _intent_id,
    _metadata,
    _minor_units,
    _text,
    _translate,
    get_client,
)


@dataclass(frozen=True)
class Account:
    id: str
    charges_enabled: bool
    payouts_enabled: bool
    details_submitted: bool
    requirements_due: tuple[str, ...]


def account_from_payload(data: Mapping[str, Any]) -> Account:
    if not isinstance(data, Mapping):
        raise MalformedObject("The event's object is not an Account.")
    requirements = data.get("requirements") or {}
    if not isinstance(requirements, Mapping):
        raise MalformedObject("The event's object has malformed `requirements`.")
    due = requirements.get("currently_due") or []
    if not isinstance(due, list) or not all(isinstance(item, str) for item in due):
        raise MalformedObject("The account's `requirements.currently_due` is not a list.")
    return Account(
        id=_text(data, "id", required=True) or "",
        charges_enabled=_flag(data, "charges_enabled"),
        payouts_enabled=_flag(data, "payouts_enabled"),
        details_submitted=_flag(data, "details_submitted"),
        requirements_due=tuple(due),
    )


@dataclass(frozen=True)
class AccountLink:
    url: str
    expires_at: datetime


def _account_link_from_payload(data: Mapping[str, Any]) -> AccountLink:
    expires = _minor_units(data, "expires_at")
    return AccountLink(
        url=_text(data, "url", required=True) or "",
        expires_at=datetime.fromtimestamp(expires, tz=UTC),
    )


@dataclass(frozen=True)
class TransferResult:
    id: str
    amount: int
    amount_reversed: int
    currency: str
    destination: str


def _transfer_from_payload(data: Mapping[str, Any]) -> TransferResult:
    return TransferResult(
        id=_text(data, "id", required=True) or "",
        amount=_minor_units(data, "amount"),
        amount_reversed=_minor_units(data, "amount_reversed"),
        currency=(_text(data, "currency") or "").upper(),
        destination=_text(data, "destination") or "",
    )


@dataclass(frozen=True)
class ReversalResult:
    id: str
    amount: int
    transfer: str


def _reversal_from_payload(data: Mapping[str, Any]) -> ReversalResult:
    return ReversalResult(
        id=_text(data, "id", required=True) or "",
        amount=_minor_units(data, "amount"),
        transfer=_text(data, "transfer") or "",
    )


@dataclass(frozen=True)
class Dispute:
    id: str
    status: str  # warning_needs_response, needs_response, under_review, won, lost, ...
    amount: int
    currency: str
    payment_intent: str | None
    metadata: dict[str, str]


def dispute_from_payload(data: Mapping[str, Any]) -> Dispute:
    if not isinstance(data, Mapping):
        raise MalformedObject("The event's object is not a Dispute.")
    return Dispute(
        id=_text(data, "id", required=True) or "",
        status=_text(data, "status", required=True) or "",
        amount=_minor_units(data, "amount"),
        currency=(_text(data, "currency") or "").upper(),
        payment_intent=_intent_id(data),
        metadata=_metadata(data),
    )


EXTRA_EVENT_PARSERS["account.updated"] = account_from_payload
EXTRA_EVENT_PARSERS["charge.dispute.created"] = dispute_from_payload
EXTRA_EVENT_PARSERS["charge.dispute.closed"] = dispute_from_payload


def create_express_account(
    *, email: str, metadata: dict[str, str], idempotency_key: str
) -> Account:
    """Creates an Express account that can receive transfers. The same key: the same account."""
    client = get_client()
    params: dict[str, Any] = {
        "type": "express",
        "capabilities": {"transfers": {"requested": True}},
        "metadata": metadata,
    }
    if email:
        params["email"] = email
    try:
        account = client.v1.accounts.create(
            params=params,  # type: ignore[arg-type]
            options={"idempotency_key": idempotency_key},
        )
    except stripe.StripeError as error:
        raise _translate(error, "create a connected account") from error
    return _from_answer(account_from_payload, account, "read an account")


def retrieve_account(account_id: str) -> Account:
    client = get_client()
    try:
        account = client.v1.accounts.retrieve(account_id)
    except stripe.StripeError as error:
        raise _translate(error, "retrieve a connected account") from error
    return _from_answer(account_from_payload, account, "read an account")


def create_account_link(*, account_id: str, refresh_url: str, return_url: str) -> AccountLink:
    """A single-use link to Stripe's hosted onboarding (it expires within minutes)."""
    client = get_client()
    try:
        link = client.v1.account_links.create(
            params={
                "account": account_id,
                "refresh_url": refresh_url,
                "return_url": return_url,
                "type": "account_onboarding",
            }
        )
    except stripe.StripeError as error:
        raise _translate(error, "create an account link") from error
    return _from_answer(_account_link_from_payload, link, "read an account link")


def create_transfer(
    *,
    amount: int,
    currency: str,
    destination: str,
    source_transaction: str | None,
    transfer_group: str,
    metadata: dict[str, str],
    idempotency_key: str,
) -> TransferResult:
    """Moves `amount` minor units to a connected account. The same key: the same transfer.

    `source_transaction` (the booking's charge) lets Stripe transfer funds not yet available.
    """
    client = get_client()
    params: dict[str, Any] = {
        "amount": amount,
        "currency": currency.lower(),
        "destination": destination,
        "transfer_group": transfer_group,
        "metadata": metadata,
    }
    if source_transaction:
        params["source_transaction"] = source_transaction
    try:
        transfer = client.v1.transfers.create(
            params=params,  # type: ignore[arg-type]
            options={"idempotency_key": idempotency_key},
        )
    except stripe.StripeError as error:
        raise _translate(error, "transfer to a connected account") from error
    return _from_answer(_transfer_from_payload, transfer, "read a transfer")


def create_transfer_reversal(
    *, transfer_id: str, amount: int, metadata: dict[str, str], idempotency_key: str
) -> ReversalResult:
    """Takes `amount` minor units of a transfer back. The same key: the same reversal."""
    client = get_client()
    try:
        reversal = client.v1.transfers.reversals.create(
            transfer_id,
            params={"amount": amount, "metadata": metadata},
            options={"idempotency_key": idempotency_key},
        )
    except stripe.StripeError as error:
        raise _translate(error, "reverse a transfer") from error
    return _from_answer(_reversal_from_payload, reversal, "read a transfer reversal")
