"""Outgoing webhooks (CONTRACT.md "Outgoing webhooks"): subscriptions, events, deliveries.

    change (booking_transition, a session published or cancelled, a review)
      -> webhook_emit(): one WebhookEvent (the payload as of now) and one WebhookDelivery per
         matching subscription, plus one outbox row per delivery, all in the change's
         transaction: a rolled-back change tells nobody, a committed one is never forgotten.
      -> the task `webhooks.deliver` (no lock held) signs and POSTs it through
         integrations/webhook_http.py (the SSRF rules), and records the answer on the row.

Delivery is at least once (a worker killed after the POST and before the record sends it again,
with the same `Webhook-Id`): receivers de-duplicate on it. Retries: exponential backoff with
jitter (WEBHOOK_RETRY_BASE_SECONDS doubling up to WEBHOOK_RETRY_MAX_SECONDS, each delay
scaled by a random factor in [0.5, 1]) until WEBHOOK_RETRY_WINDOW_HOURS after the event; then
the delivery is `failed`. A 410 Gone switches the subscription off and e-mails its owner.

Order: events of one booking (the event's `ordering_key`) reach a subscriber in the order they
happened. A delivery waits while an earlier one with its key is still pending for that
subscription, and a delivery that goes through wakes the next one.
"""

import hashlib
import hmac
import json
import logging
import random
import secrets
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from backend.exceptions import Forbidden, NotFound, ValidationFailed
from backend.integrations import webhook_http
from backend.models import (
    Booking,
    Review,
    Session,
    User,
    WaitlistEntry,
    WebhookDelivery,
    WebhookEvent,
    WebhookSubscription,
)
from backend.models.webhooks import EVENT_TYPES
from backend.services.outbox import RetryLater, outbox_enqueue, outbox_wake

logger = logging.getLogger(__name__)

DeliveryStatus = WebhookDelivery.Status

# Sent by `POST webhooks/{id}/ping/` to that one subscription; nobody subscribes to it.
PING = "ping"

DELIVER_TASK = "webhooks.deliver"
OWNER_EMAIL_TASK = "webhooks.owner_email"
# A delivery waiting for an earlier one of its booking looks again after this, at the latest.
ORDER_WAIT = timedelta(seconds=30)


# --- subscriptions --------------------------------------------------------------------------


def _check_can_subscribe(owner: User) -> None:
    if not (owner.is_creator or owner.is_staff):
        raise Forbidden("Only creators and staff can subscribe to webhooks.")


def _check_url(url: str) -> None:
    try:
        webhook_http.check_url(url)
    except (webhook_http.UnsafeTarget, webhook_http.SendFailed) as error:
        raise ValidationFailed(
            f"This URL cannot receive webhooks: {error}.", code="webhook_url_not_allowed"
        ) from error


def _own_subscription(*, owner: User, subscription_id: int) -> WebhookSubscription:
    _check_can_subscribe(owner)
    subscription = (
        WebhookSubscription.objects.select_for_update()
        .filter(pk=subscription_id, owner=owner)
        .first()
    )
    if subscription is None:
        raise NotFound("Webhook not found.")
    return subscription


def webhook_subscription_create(
    *, owner: User, url: str, events: list[str], description: str = ""
) -> WebhookSubscription:
    """A new subscription with a fresh secret. `url` must pass the SSRF rules now (and again
    at every delivery)."""
    _check_can_subscribe(owner)
    _check_url(url)
    return WebhookSubscription.objects.create(
        owner=owner,
        url=url,
        events=list(dict.fromkeys(events)),
        description=description,
        secret=f"whsec_{secrets.token_urlsafe(32)}",
    )


def webhook_subscription_update(
    *, owner: User, subscription_id: int, data: dict[str, Any]
) -> WebhookSubscription:
    """Changes url, events, description, is_active. Switching it back on clears why it was
    switched off; deliveries given up meanwhile stay given up."""
    if "url" in data:
        # Before the transaction and its lock: the check resolves the host name.
        _check_url(data["url"])
    with transaction.atomic():
        subscription = _own_subscription(owner=owner, subscription_id=subscription_id)
        if "url" in data:
            subscription.url = data["url"]
        if "events" in data:
            subscription.events = list(dict.fromkeys(data["events"]))
        if "description" in data:
            subscription.description = data["description"]
        if "is_active" in data and data["is_active"] != subscription.is_active:
            subscription.is_active = data["is_active"]
            subscription.disabled_at = None if subscription.is_active else timezone.now()
            subscription.disabled_reason = "" if subscription.is_active else "switched off"
        subscription.save()
    return subscription


@transaction.atomic
def webhook_subscription_delete(*, owner: User, subscription_id: int) -> None:
    """Deletes it and its delivery log; queued deliveries find nothing to send."""
    _own_subscription(owner=owner, subscription_id=subscription_id).delete()


@transaction.atomic
def webhook_ping(*, owner: User, subscription_id: int) -> WebhookDelivery:
    """A `ping` event for this subscription only (active or not: it checks the endpoint)."""
    subscription = _own_subscription(owner=owner, subscription_id=subscription_id)
    event = _new_event(type=PING, data={"webhook": {"id": subscription.pk}}, creator_id=None)
    return _queue_delivery(event=event, subscription=subscription)


# --- events ---------------------------------------------------------------------------------


def _new_event(
    *, type: str, data: dict[str, Any], creator_id: int | None, ordering_key: str = ""
) -> WebhookEvent:
    return WebhookEvent.objects.create(
        public_id=f"evt_{secrets.token_hex(12)}",
        type=type,
        data=data,
        creator_id=creator_id,
        ordering_key=ordering_key,
    )


def _queue_delivery(*, event: WebhookEvent, subscription: WebhookSubscription) -> WebhookDelivery:
    delivery = WebhookDelivery.objects.create(event=event, subscription=subscription)
    outbox_enqueue(
        task=DELIVER_TASK,
        kwargs={"delivery_id": delivery.pk},
        effect_key=_effect_key(delivery.pk),
    )
    return delivery


def _effect_key(delivery_id: int) -> str:
    return f"webhook:delivery:{delivery_id}"


def webhook_emit(
    *,
    type: str,
    data: Callable[[], dict[str, Any]],
    creator_id: int | None,
    ordering_key: str = "",
) -> WebhookEvent | None:
    """Records the event for every active subscription that wants it: the creator's own and
    staff's. Call it inside the change's transaction. None (and no rows) if nobody listens;
    `data` builds the payload, only when somebody does (one query when nobody does)."""
    events = webhook_emit_each(
        types=[type], data=data, creator_id=creator_id, ordering_key=ordering_key
    )
    return events[0] if events else None


def webhook_emit_each(
    *,
    types: Sequence[str],
    data: Callable[[], dict[str, Any]],
    creator_id: int | None,
    ordering_key: str = "",
) -> list[WebhookEvent]:
    """`webhook_emit` for several events of one change (a free booking is created and
    confirmed at once), in this order, with one subscription query for all of them (none when
    `types` is empty). Returns the events somebody listens to."""
    for type in types:
        if type not in EVENT_TYPES:
            raise ValueError(f"unknown webhook event type {type!r}")
    if not types:
        return []
    audience = Q(owner__is_staff=True)
    if creator_id is not None:
        audience |= Q(owner_id=creator_id)
    active = list(WebhookSubscription.objects.filter(audience, is_active=True))
    events = []
    for type in types:
        subscriptions = [subscription for subscription in active if type in subscription.events]
        if not subscriptions:
            continue
        event = _new_event(type=type, data=data(), creator_id=creator_id, ordering_key=ordering_key)
        for subscription in subscriptions:
            _queue_delivery(event=event, subscription=subscription)
        events.append(event)
    return events


def _time(value: datetime | None) -> str | None:
    """As the API writes times: UTC, `Z`."""
    if value is None:
        return None
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _user_ref(user: User) -> dict[str, Any]:
    return {"id": user.pk, "username": user.username}


def _session_data(session: Session) -> dict[str, Any]:
    return {
        "id": session.pk,
        "title": session.title,
        "status": session.status,
        "start_time": _time(session.start_time),
        "end_time": _time(session.end_time),
        "price": str(session.price),
        "currency": session.currency.upper(),
        "capacity": session.capacity,
        "creator": _user_ref(session.creator),
    }


def _booking_data(booking: Booking) -> dict[str, Any]:
    session = booking.session
    return {
        "booking": {
            "id": booking.pk,
            "status": booking.status,
            "payment_status": booking.payment_status,
            "seats": booking.seats,
            "amount": str(booking.amount),
            "refunded_amount": str(booking.refunded_amount),
            "currency": booking.currency,
            "created_at": _time(booking.created_at),
            "confirmed_at": _time(booking.confirmed_at),
            "cancelled_at": _time(booking.cancelled_at),
            "session": {
                "id": session.pk,
                "title": session.title,
                "start_time": _time(session.start_time),
                "end_time": _time(session.end_time),
            },
            "user": _user_ref(booking.user),
        }
    }


def emit_booking_change(
    booking: Booking, *, is_new: bool, before_status: str, before_payment_status: str
) -> None:
    """booking.created / confirmed / cancelled / refunded for one move of a booking (called by
    booking_transition, in its transaction): one subscription query per move, whatever it
    emits."""
    types: list[str] = []
    if is_new:
        types.append("booking.created")
    if booking.status != before_status:
        if booking.status == Booking.Status.CONFIRMED:
            types.append("booking.confirmed")
        elif booking.status == Booking.Status.CANCELLED:
            types.append("booking.cancelled")
    if (
        booking.payment_status != before_payment_status
        and booking.payment_status == Booking.PaymentStatus.REFUNDED
    ):
        types.append("booking.refunded")
    webhook_emit_each(
        types=types,
        data=lambda: _booking_data(booking),
        creator_id=booking.session.creator_id,
        ordering_key=f"booking:{booking.pk}",
    )


def emit_booking_rescheduled(booking: Booking, *, previous_session: Session) -> None:
    """booking.rescheduled: the booking moved to another session (called by the reschedule
    service, in its transaction; `booking.session` is the new one)."""

    def data() -> dict[str, Any]:
        payload = _booking_data(booking)
        payload["previous_session"] = {
            "id": previous_session.pk,
            "title": previous_session.title,
            "start_time": _time(previous_session.start_time),
        }
        return payload

    webhook_emit(
        type="booking.rescheduled",
        data=data,
        creator_id=booking.session.creator_id,
        ordering_key=f"booking:{booking.pk}",
    )


def emit_waitlist_offered(entry: WaitlistEntry, *, booking: Booking) -> None:
    """waitlist.offered: freed seats went to a waiting user as a booking (pending with the
    offer's hold, or confirmed at once for a free session). Called in the offer's transaction."""

    def data() -> dict[str, Any]:
        return {
            "waitlist_entry": {
                "id": entry.pk,
                "status": entry.status,
                "seats": entry.seats,
                "offer_expires_at": _time(entry.offer_expires_at),
                "user": _user_ref(entry.user),
            },
            **_booking_data(booking),
        }

    webhook_emit(
        type="waitlist.offered",
        data=data,
        creator_id=booking.session.creator_id,
        ordering_key=f"booking:{booking.pk}",
    )


def emit_session_status(session: Session, *, type: str) -> None:
    """session.published / session.cancelled (called by the catalog service, in its
    transaction)."""
    webhook_emit(
        type=type,
        data=lambda: {"session": _session_data(session)},
        creator_id=session.creator_id,
        ordering_key=f"session:{session.pk}",
    )


def emit_review_created(review: Review) -> None:
    webhook_emit(
        type="review.created",
        data=lambda: {
            "review": {
                "id": review.pk,
                "booking": review.booking_id,
                "session": review.session_id,
                "author": _user_ref(review.author),
                "rating": review.rating,
                "comment": review.comment,
                "created_at": _time(review.created_at),
            }
        },
        creator_id=review.creator_id,
    )


# --- delivery -------------------------------------------------------------------------------


def sign(*, secret: str, timestamp: int, body: bytes) -> str:
    """`v1`: hex HMAC-SHA256 of "<timestamp>.<raw body>" with the subscription's secret."""
    message = str(timestamp).encode() + b"." + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def payload_bytes(event: WebhookEvent) -> bytes:
    payload = {
        "id": event.public_id,
        "type": event.type,
        "created": int(event.created_at.timestamp()),
        "data": event.data,
    }
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()


def retry_delay(attempts: int) -> timedelta:
    """Backoff after the `attempts`-th failed attempt: doubling, capped, with jitter so that
    the deliveries of a receiver that was down do not all come back at the same second."""
    base = settings.WEBHOOK_RETRY_BASE_SECONDS
    ceiling = min(base * 2 ** max(attempts - 1, 0), settings.WEBHOOK_RETRY_MAX_SECONDS)
    return timedelta(seconds=ceiling * random.uniform(0.5, 1.0))  # noqa: S311 (not a secret)


def _earlier_pending(delivery: WebhookDelivery) -> WebhookDelivery | None:
    key = delivery.event.ordering_key
    if not key:
        return None
    return (
        WebhookDelivery.objects.filter(
            subscription_id=delivery.subscription_id,
            status=DeliveryStatus.PENDING,
            event__ordering_key=key,
            event_id__lt=delivery.event_id,
        )
        .order_by("event_id")
        .first()
    )


def _wake_next(delivery: WebhookDelivery) -> None:
    key = delivery.event.ordering_key
    if not key:
        return
    following = (
        WebhookDelivery.objects.filter(
            subscription_id=delivery.subscription_id,
            status=DeliveryStatus.PENDING,
            event__ordering_key=key,
            event_id__gt=delivery.event_id,
        )
        .order_by("event_id")
        .values_list("pk", flat=True)
        .first()
    )
    if following is not None:
        outbox_wake(effect_key=_effect_key(following))


def webhook_deliver(*, delivery_id: int) -> None:
    """The task's handler: one attempt at one delivery, recorded on its row.

    Raises RetryLater (the outbox runs it again then) while it should be retried; returns once
    it is delivered, given up, or has nothing left to do. The outbox's claim makes sure only
    one worker runs a delivery at a time.
    """
    delivery = (
        WebhookDelivery.objects.select_related("event", "subscription")
        .filter(pk=delivery_id)
        .first()
    )
    if delivery is None or delivery.status != DeliveryStatus.PENDING:
        return  # deleted with its subscription, or finished already
    subscription = delivery.subscription
    now = timezone.now()
    if not subscription.is_active and delivery.event.type != PING:
        WebhookDelivery.objects.filter(pk=delivery.pk, status=DeliveryStatus.PENDING).update(
            status=DeliveryStatus.CANCELLED, next_attempt_at=None
        )
        return
    earlier = _earlier_pending(delivery)
    if earlier is not None:
        due = earlier.next_attempt_at or now
        raise RetryLater(
            min(max(due - now, timedelta(0)) + timedelta(seconds=1), ORDER_WAIT),
            f"waits for delivery {earlier.pk} of the same booking",
        )

    body = payload_bytes(delivery.event)
    timestamp = int(time.time())
    signature = sign(secret=subscription.secret, timestamp=timestamp, body=body)
    headers = {
        "Webhook-Id": delivery.event.public_id,
        "Webhook-Signature": f"t={timestamp},v1={signature}",
    }
    attempts = delivery.attempts + 1
    record: dict[str, Any] = {"attempts": attempts, "last_attempt_at": now}
    try:
        answer = webhook_http.post(subscription.url, body=body, headers=headers)
    except webhook_http.UnsafeTarget as error:
        # The URL or its addresses are refused now (DNS changed since the creation): never
        # sent, and retrying would only knock again at the same door.
        logger.warning("webhook delivery %s refused: %s", delivery.pk, error)
        _finish(delivery, status=DeliveryStatus.FAILED, error=f"refused: {error}", **record)
        return
    except webhook_http.SendFailed as error:
        record.update(response_status=None, response_time_ms=None, response_body="")
        _retry_or_give_up(delivery, error=str(error), attempts=attempts, record=record, now=now)
        return
    record.update(
        response_status=answer.status,
        response_time_ms=answer.elapsed_ms,
        response_body=answer.body.decode("utf-8", errors="replace"),
    )
    if 200 <= answer.status < 300:
        _finish(delivery, status=DeliveryStatus.DELIVERED, error="", delivered_at=now, **record)
        _wake_next(delivery)
        return
    if answer.status == 410:
        _finish(delivery, status=DeliveryStatus.FAILED, error="410 Gone", **record)
        webhook_subscription_disable_gone(subscription_id=subscription.pk)
        return
    _retry_or_give_up(
        delivery, error=f"HTTP {answer.status}", attempts=attempts, record=record, now=now
    )


def _finish(delivery: WebhookDelivery, *, status: str, error: str, **fields: Any) -> None:
    WebhookDelivery.objects.filter(pk=delivery.pk).update(
        status=status, error=error[:500], next_attempt_at=None, **fields
    )


def _retry_or_give_up(
    delivery: WebhookDelivery,
    *,
    error: str,
    attempts: int,
    record: dict[str, Any],
    now: datetime,
) -> None:
    delay = retry_delay(attempts)
    window_ends = delivery.created_at + timedelta(hours=settings.WEBHOOK_RETRY_WINDOW_HOURS)
    if now + delay > window_ends:
        logger.warning("webhook delivery %s given up after %s attempts", delivery.pk, attempts)
        _finish(delivery, status=DeliveryStatus.FAILED, error=f"gave up: {error}", **record)
        return
    WebhookDelivery.objects.filter(pk=delivery.pk).update(
        error=error[:500], next_attempt_at=now + delay, **record
    )
    raise RetryLater(delay, f"webhook delivery {delivery.pk}: {error}")


@transaction.atomic
def webhook_subscription_disable_gone(*, subscription_id: int) -> None:
    """The receiver answered 410 Gone: switch the subscription off, drop what it still had
    queued, and tell its owner (once per switch-off)."""
    subscription = (
        WebhookSubscription.objects.select_for_update()
        .select_related("owner")
        .filter(pk=subscription_id)
        .first()
    )
    if subscription is None or not subscription.is_active:
        return
    now = timezone.now()
    subscription.is_active = False
    subscription.disabled_at = now
    subscription.disabled_reason = "the receiver answered 410 Gone"
    subscription.save(update_fields=["is_active", "disabled_at", "disabled_reason", "updated_at"])
    WebhookDelivery.objects.filter(subscription=subscription, status=DeliveryStatus.PENDING).update(
        status=DeliveryStatus.CANCELLED, next_attempt_at=None
    )
    owner = subscription.owner
    if not owner.email:
        return
    outbox_enqueue(
        task=OWNER_EMAIL_TASK,
        kwargs={
            "to": owner.email,
            "subject": "[Sessions Marketplace] Your webhook was switched off",
            "body": (
                f"Hello {owner.get_full_name() or owner.username},\n\n"
                f"Your webhook #{subscription.pk} ({subscription.url}) answered 410 Gone, so we "
                "stopped sending events to it. Switch it back on (PATCH "
                f'/api/webhooks/{subscription.pk}/ {{"is_active": true}}) once it accepts '
                "events again.\n"
            ),
        },
        effect_key=f"email:webhook_disabled:{subscription.pk}:{int(now.timestamp())}",
        max_attempts=10,
    )


def webhook_owner_email_send(*, to: str, subject: str, body: str) -> None:
    """The owner-email task's handler. Raises on failure, to be retried by the outbox."""
    send_mail(subject, body, None, [to], fail_silently=False)


# --- house-keeping --------------------------------------------------------------------------


def webhook_log_prune(*, now: datetime | None = None) -> int:
    """Deletes finished deliveries (and events left without any) older than
    WEBHOOK_LOG_RETENTION_DAYS; returns how many deliveries went."""
    cutoff = (now or timezone.now()) - timedelta(days=settings.WEBHOOK_LOG_RETENTION_DAYS)
    deleted, _ = (
        WebhookDelivery.objects.filter(created_at__lt=cutoff)
        .exclude(status=DeliveryStatus.PENDING)
        .delete()
    )
    WebhookEvent.objects.filter(created_at__lt=cutoff, deliveries__isnull=True).delete()
    return deleted
