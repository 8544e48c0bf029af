"""The data export (GDPR arts. 15 and 20): everything held about one user, nothing of others.

What is held about a user: the profile; their bookings, each with its audit events and its
payments (charges and refunds); the sessions they created (as a creator); the objects they
stored, with a fresh URL each; the reviews they wrote; the sign-ins (refresh tokens) issued to
them; their outgoing webhook subscriptions. Other people's bookings of a creator's sessions are
those people's data and are not exported; a booking's session names its creator by id and
username only, as the public catalog does.

In a fixed number of queries, whatever the number of bookings.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from django.db.models import Exists, OuterRef, Prefetch
from django.utils import timezone
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken

from backend.integrations.storage import object_url
from backend.models import (
    Booking,
    BookingEvent,
    Payment,
    Review,
    Session,
    StoredFile,
    User,
    WebhookSubscription,
)


@dataclass(frozen=True)
class ExportedFile:
    file: StoredFile
    url: str


@dataclass(frozen=True)
class UserExport:
    generated_at: datetime
    user: User
    bookings: Sequence[Booking]
    sessions: Sequence[Session]
    files: Sequence[ExportedFile]
    # The reviews the user wrote (hidden ones too: they are still held).
    reviews: Sequence[Review]
    # Annotated with `revoked`.
    sign_ins: Sequence[OutstandingToken]
    # Outgoing webhook subscriptions (their URLs may name the user); never their secrets.
    webhooks: Sequence[WebhookSubscription]


def user_export(*, user: User) -> UserExport:
    """Everything held about `user`. Bookings carry `events` and `payments` prefetched, oldest
    first; sign-ins carry `revoked` (annotated)."""
    bookings = list(
        Booking.objects.filter(user=user)
        .select_related("session__creator")
        .prefetch_related(
            Prefetch("events", queryset=BookingEvent.objects.order_by("created_at", "id")),
            Prefetch("payments", queryset=Payment.objects.order_by("created_at", "id")),
        )
        .order_by("created_at", "id")
    )
    sessions = list(Session.objects.filter(creator=user).order_by("start_time", "id"))
    # object_url makes no request to the storage: presigning is local (integrations/storage.py).
    files = [
        ExportedFile(file=stored, url=object_url(key=stored.key))
        for stored in StoredFile.objects.filter(owner=user).order_by("created_at", "id")
    ]
    reviews = list(Review.objects.filter(author=user).order_by("created_at", "id"))
    sign_ins = list(
        OutstandingToken.objects.filter(user=user)
        .annotate(revoked=Exists(BlacklistedToken.objects.filter(token=OuterRef("pk"))))
        .order_by("created_at", "id")
    )
    return UserExport(
        generated_at=timezone.now(),
        user=user,
        bookings=bookings,
        sessions=sessions,
        files=files,
        reviews=reviews,
        sign_ins=sign_ins,
        webhooks=list(WebhookSubscription.objects.filter(owner=user).order_by("id")),
    )
