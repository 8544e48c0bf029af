"""Account deletion (GDPR art. 17): the user leaves, the accounting stays.

`user_delete` runs in steps, each through the service that owns it, so that no rule is
re-implemented here:

1. A creator's upcoming sessions are locked (id order) and checked: one with an active booking
   is a 409 `has_upcoming_sessions` before anything changes. The others are closed through the
   catalog service (deleted if nobody ever booked them, cancelled otherwise), under the same
   locks, so nobody can book them meanwhile.
2. The user's upcoming active bookings are cancelled through `booking_cancel`, as the user,
   with the owner's rules: paid ones are refunded per the rules. A booking the rules refuse to
   cancel (a paid one inside the cancellation window) is kept as it is: paid, not refunded.
3. Their stored files are deleted through the files service: the S3 object first, then the row.
4. One transaction: every outstanding refresh token is blacklisted, booking notes are erased
   (one audit event each), the admin log's copies of their name are rewritten, and the account
   is anonymised and deactivated. Bookings, their events and payments stay, pointing at it.

Steps 2 and 3 run outside that last transaction (refunds are queued tasks; S3 is called
directly). If one fails (a 503 from storage), what was done stays done and the account is still
active and untouched: calling `user_delete` again carries on where it stopped.
"""

import logging
import uuid
from dataclasses import dataclass, field

from django.contrib.admin.models import LogEntry
from django.contrib.contenttypes.models import ContentType
from django.db import transaction
from django.db.models import Q, TextField
from django.db.models.functions import Cast
from django.utils import timezone
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken
from social_django.models import Code, UserSocialAuth

from backend import booking_rules, catalog_cache
from backend.exceptions import BookingError, Conflict
from backend.models import Booking, Session, StoredFile, User, WebhookSubscription
from backend.models.outbox import OutboxMessage
from backend.models.users import new_calendar_token
from backend.services.booking_changes import booking_transition
from backend.services.bookings import booking_cancel
from backend.services.catalog import session_delete
from backend.services.files import file_delete
from backend.services.locking import lock_booking
from backend.services.notifications import SEND_EMAIL_TASK
from backend.timezones import DEFAULT_TIMEZONE

logger = logging.getLogger(__name__)

DELETED_USERNAME_PREFIX = "deleted-"

# Codes of booking_cancel refusals that leave the booking as the rules want it: cancelled or
# expired meanwhile (nothing left to do), or no longer cancellable by its user (kept, paid).
ALREADY_DONE_CODES = frozenset({"not_active", "expired"})
KEPT_BY_RULES_CODES = frozenset({"cancellation_window", "session_started"})


@dataclass
class UserDeletion:
    """What `user_delete` did, for the admin's message and the log."""

    user_id: int
    sessions_closed: list[int] = field(default_factory=list)
    bookings_cancelled: list[int] = field(default_factory=list)
    # Upcoming bookings the cancellation rules refused (paid, inside the window): kept as they are.
    bookings_kept: list[int] = field(default_factory=list)
    files_deleted: int = 0
    tokens_revoked: int = 0


def is_deleted(user: User) -> bool:
    """Whether `user_delete` has anonymised this account (the last step, so all of it ran)."""
    return (
        not user.is_active
        and user.username.startswith(DELETED_USERNAME_PREFIX)
        and not user.email
        and not user.has_usable_password()
    )


def _upcoming_sessions(user: User) -> list[int]:
    return list(
        Session.objects.filter(creator=user, start_time__gt=timezone.now())
        .exclude(status=Session.Status.CANCELLED)
        .order_by("id")
        .values_list("id", flat=True)
    )


def _close_upcoming_sessions(*, user: User, deletion: UserDeletion) -> None:
    """Step 1: 409 if any upcoming session has an active booking; otherwise close them all."""
    session_ids = _upcoming_sessions(user)
    if not session_ids:
        return
    with transaction.atomic():
        # Locked in id order (backend/services/locking.py) and checked under the locks: a
        # booking cannot arrive between the check and the close.
        locked = list(Session.objects.select_for_update().filter(pk__in=session_ids).order_by("id"))
        booked = [
            session.pk
            for session in locked
            if session.bookings.filter(booking_rules.seat_holding_q()).exists()
        ]
        if booked:
            raise Conflict(
                f"You have {len(booked)} upcoming session(s) with active bookings; cancel them "
                "(which refunds their attendees) before deleting your account.",
                code="has_upcoming_sessions",
            )
        for session in locked:
            session_delete(session_id=session.pk, actor=user)
            deletion.sessions_closed.append(session.pk)


def _cancel_upcoming_bookings(*, user: User, deletion: UserDeletion) -> None:
    """Step 2: each upcoming active booking through booking_cancel, as its user."""
    upcoming = (
        Booking.objects.filter(
            user=user, status__in=Booking.ACTIVE_STATUSES, session__start_time__gt=timezone.now()
        )
        .order_by("session_id", "id")
        .values_list("id", flat=True)
    )
    for booking_id in list(upcoming):
        if booking_id in deletion.bookings_kept:
            continue
        try:
            booking_cancel(booking_id=booking_id, actor=user, reason="account_deleted")
        except BookingError as refusal:
            if refusal.code in KEPT_BY_RULES_CODES:
                deletion.bookings_kept.append(booking_id)
                logger.info(
                    "account %s deleted: booking %s kept (%s)", user.pk, booking_id, refusal.code
                )
            elif refusal.code not in ALREADY_DONE_CODES:
                raise
        else:
            deletion.bookings_cancelled.append(booking_id)


def _delete_files(*, user: User, deletion: UserDeletion) -> None:
    """Step 3: every stored object of the user, through the files service (object, then row)."""
    for key in list(StoredFile.objects.filter(owner=user).values_list("key", flat=True)):
        file_delete(owner=user, key=key)
        deletion.files_deleted += 1


def _revoke_tokens(user: User) -> int:
    """Blacklists every outstanding token of the user, refresh tokens (and logged-out access
    tokens) alike. Access tokens of an inactive user are refused anyway
    (backend/authentication.py)."""
    pending = OutstandingToken.objects.filter(user=user, blacklistedtoken__isnull=True)
    created = BlacklistedToken.objects.bulk_create(
        [BlacklistedToken(token=token) for token in pending], ignore_conflicts=True
    )
    return len(created)


def _erase_booking_notes(user: User) -> None:
    """Notes are the user's own words (diets, needs): not needed for accounting."""
    with_notes = (
        Booking.objects.filter(user=user)
        .exclude(notes="")
        .order_by("session_id", "id")
        .values_list("id", flat=True)
    )
    for booking_id in list(with_notes):
        booking = lock_booking(booking_id=booking_id)
        booking_transition(booking, actor=user, reason="personal_data_erased", notes="")


def _free_username(user: User) -> str:
    username = f"{DELETED_USERNAME_PREFIX}{user.pk}"
    # A sign-up may have picked this name (usernames allow "-"): then a unique variant.
    if User.objects.filter(username__iexact=username).exclude(pk=user.pk).exists():
        username = f"{username}-{uuid.uuid4().hex[:8]}"
    return username


def _rewrite_admin_log(*, user: User, old_values: list[str]) -> None:
    """The admin log keeps each object's str() at the time: rewrite those that name the user."""
    if not old_values:
        return
    named = Q()
    for value in old_values:
        named |= Q(object_repr__icontains=value) | Q(change_message__icontains=value)
    user_type = ContentType.objects.get_for_model(User)
    booking_type = ContentType.objects.get_for_model(Booking)
    booking_ids = {str(pk) for pk in Booking.objects.filter(user=user).values_list("pk", flat=True)}
    for entry in LogEntry.objects.filter(named).select_related("content_type"):
        if entry.content_type_id == user_type.pk and entry.object_id == str(user.pk):
            entry.object_repr = user.username
        elif entry.content_type_id == booking_type.pk and entry.object_id in booking_ids:
            booking = Booking.objects.select_related("user", "session").get(pk=entry.object_id)
            entry.object_repr = str(booking)[:200]
        else:
            entry.object_repr = _redacted(entry.object_repr, old_values)
        entry.change_message = _redacted(entry.change_message, old_values)
        entry.save(update_fields=["object_repr", "change_message"])


def _redacted_json(value: object, old_values: list[str]) -> object:
    if isinstance(value, str):
        return _redacted(value, old_values)
    if isinstance(value, list):
        return [_redacted_json(item, old_values) for item in value]
    if isinstance(value, dict):
        return {key: _redacted_json(item, old_values) for key, item in value.items()}
    return value


def _erase_from_outbox(*, old_email: str, old_values: list[str]) -> None:
    """Queued tasks carry what they need: an e-mail its address, the name and the text. Every
    message naming the user is rewritten; an e-mail to them not sent yet is dropped (failed):
    the address is what they asked us to forget. The effect keys stay (idempotency)."""
    if not old_values:
        return
    named = Q()
    for value in old_values:
        named |= Q(kwargs_text__icontains=value)
    unsent = (
        OutboxMessage.Status.PENDING,
        OutboxMessage.Status.PUBLISHED,
        OutboxMessage.Status.RUNNING,
    )
    messages = OutboxMessage.objects.annotate(kwargs_text=Cast("kwargs", TextField())).filter(named)
    for message in messages.select_for_update(of=("self",)):
        changed = ["kwargs"]
        to = str(message.kwargs.get("to", "")) if isinstance(message.kwargs, dict) else ""
        if (
            message.task == SEND_EMAIL_TASK
            and message.status in unsent
            and old_email
            and to.lower() == old_email.lower()
        ):
            message.status = OutboxMessage.Status.FAILED
            message.last_error = "not sent: the recipient's account was deleted"
            changed += ["status", "last_error"]
        message.kwargs = _redacted_json(message.kwargs, old_values)
        message.save(update_fields=changed)


def _redacted(text: str, old_values: list[str]) -> str:
    for value in sorted(old_values, key=len, reverse=True):
        lowered = text.lower()
        start = lowered.find(value.lower())
        while start != -1:
            text = text[:start] + "[deleted]" + text[start + len(value) :]
            lowered = text.lower()
            start = lowered.find(value.lower(), start + len("[deleted]"))
    return text


def _anonymise(user: User) -> list[str]:
    """Clears every personal field of the (locked) user; returns the old identifying values."""
    old_values = [
        value
        for value in (user.username, user.email, user.first_name, user.last_name)
        if value and len(value) >= 2
    ]
    old_email = user.email
    user.username = _free_username(user)
    user.email = ""
    user.first_name = ""
    user.last_name = ""
    user.bio = ""
    user.avatar = ""
    user.avatar_url = ""
    user.oauth_provider = None
    user.oauth_uid = ""
    user.timezone = DEFAULT_TIMEZONE
    # The calendar feed's URL stops working (it 404s for an inactive account anyway).
    user.calendar_token = new_calendar_token()
    user.is_active = False
    user.is_staff = False
    user.is_superuser = False
    user.last_login = None
    user.set_unusable_password()
    user.save()
    user.groups.clear()
    user.user_permissions.clear()
    # social_django's tables stay empty here (sign-in keeps the identity on the user), but
    # a row there would still name the person.
    UserSocialAuth.objects.filter(user=user).delete()
    if old_email:
        Code.objects.filter(email__iexact=old_email).delete()
    return old_values


def user_delete(*, user: User) -> UserDeletion:
    """Deletes the account of `user` as described in the module docstring.

    Raises Conflict (409 `has_upcoming_sessions`) for a creator whose upcoming sessions have
    active bookings, changing nothing. Call it outside any transaction: Stripe and S3 are
    called between the steps. Deleting an already deleted account changes nothing more.
    """
    deletion = UserDeletion(user_id=user.pk)
    if is_deleted(user):
        return deletion
    _close_upcoming_sessions(user=user, deletion=deletion)
    _cancel_upcoming_bookings(user=user, deletion=deletion)
    _delete_files(user=user, deletion=deletion)
    with transaction.atomic():
        # The row lock orders this against a concurrent avatar upload or profile edit.
        locked = User.objects.select_for_update().get(pk=user.pk)
        # A booking made in another tab since step 2 (the account was still active then).
        _cancel_upcoming_bookings(user=locked, deletion=deletion)
        deletion.tokens_revoked = _revoke_tokens(locked)
        # Their endpoints stop hearing from us; the URLs may be personal data too.
        WebhookSubscription.objects.filter(owner=locked).delete()
        _erase_booking_notes(locked)
        old_email = locked.email
        old_values = _anonymise(locked)
        catalog_cache.creators_changed()  # their sessions' pages showed the name
        _rewrite_admin_log(user=locked, old_values=old_values)
        _erase_from_outbox(old_email=old_email, old_values=old_values)
    # The caller's object reflects the anonymised row (a view or the admin may show it).
    user.refresh_from_db()
    logger.info(
        "account %s deleted: %d booking(s) cancelled, %d kept, %d session(s) closed, "
        "%d file(s), %d token(s) revoked",
        user.pk,
        len(deletion.bookings_cancelled),
        len(deletion.bookings_kept),
        len(deletion.sessions_closed),
        deletion.files_deleted,
        deletion.tokens_revoked,
    )
    return deletion
