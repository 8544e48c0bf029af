"""Dashboards: a user's bookings and a creator's sessions, aggregated in the database.

Each dashboard is a fixed number of queries however many sessions and bookings there are:
counts and sums are conditional aggregates (`Count`/`Sum` with `filter=Q(...)`), money is
grouped per currency with `values(...).annotate(...)`, lists are sliced querysets with their
relations joined.

Definitions (also in the API schema, see backend/serializers/dashboards.py):
- "now" is read once per dashboard, so every figure describes the same instant.
- A session is upcoming until it ends (`start_time + duration_minutes`), so a session in
  progress is still upcoming (its attendees need the meeting link); it is past once it ended.
- Active bookings are the ones that hold seats (`seat_holding_q`): confirmed, or pending and
  younger than BOOKING_HOLD_MINUTES. Expired bookings, and pending ones past their hold, count
  nowhere; cancelled bookings are counted on their own.
- Net money of a booking ("paid minus refunded"): a `paid` booking counts its amount minus its
  `refunded_amount` (what Stripe confirmed as given back: a cancellation policy's partial
  refund, or one made from Stripe's dashboard); a `refunded` booking counts 0 (all is back);
  any other payment status (not_required, unpaid, failed) counts 0. A cancelled booking whose
  refund Stripe has not confirmed yet is still `paid`, and still counts, until it is refunded.
- Money is grouped by upper-cased currency and listed in alphabetical order; a currency appears
  once it has at least one paid or refunded booking (so a fully refunded currency shows 0.00).
"""

from datetime import timedelta
from decimal import Decimal

from django.db import connection
from django.db.models import (
    Aggregate,
    Count,
    DecimalField,
    ExpressionWrapper,
    F,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
)
from django.db.models.functions import Coalesce, Upper
from django.utils import timezone

from backend.booking_rules import seat_holding_q
from backend.models import Booking, Session, User
from backend.models.catalog import session_end_time
from backend.selectors.catalog import EqualsAnyOf, committed_seats_expression
from backend.selectors.payouts import earnings_for

UPCOMING_BOOKINGS_LIMIT = 5
PAST_BOOKINGS_LIMIT = 5
UPCOMING_SESSIONS_LIMIT = 10
RECENT_BOOKINGS_LIMIT = 10
REVENUE_RECENT_DAYS = 30
FILL_RATE_DECIMALS = 4

Status = Booking.Status
PaymentStatus = Booking.PaymentStatus
PUBLISHED = Session.Status.PUBLISHED
MONEY: DecimalField = DecimalField(max_digits=12, decimal_places=2)
ZERO = Decimal("0.00")


def booking_net_amount() -> ExpressionWrapper:
    """A booking's amount minus its `refunded_amount`; only meaningful for `paid` bookings."""
    return ExpressionWrapper(F("amount") - F("refunded_amount"), output_field=MONEY)


def money_by_currency(bookings: QuerySet, *, recent_since=None) -> tuple[list, list]:
    """Net money of `bookings` per currency: overall, and of payments made since `recent_since`.

    Payment time is the booking's `confirmed_at`: a paid booking is confirmed in the same step
    that records the successful payment (falls back to `created_at` if it was never set).
    Returns `([{currency, amount}], [{currency, amount}])`, the second empty without a date.
    """
    paid = Q(payment_status=PaymentStatus.PAID)
    annotations: dict[str, Aggregate] = {
        "total": Sum(booking_net_amount(), filter=paid, output_field=MONEY)
    }
    if recent_since is not None:
        paid_at = Coalesce("confirmed_at", "created_at")
        recent = Q(paid_at__gte=recent_since)
        bookings = bookings.alias(paid_at=paid_at)
        annotations["recent_total"] = Sum(
            booking_net_amount(), filter=paid & recent, output_field=MONEY
        )
        annotations["recent_count"] = Count("pk", filter=recent)
    rows = (
        bookings.filter(payment_status__in=[PaymentStatus.PAID, PaymentStatus.REFUNDED])
        .order_by()
        .values(code=Upper("currency"))
        .annotate(**annotations)
        .order_by("code")
    )
    overall, recent_rows = [], []
    for row in rows:  # one row per currency, not per booking
        overall.append({"currency": row["code"], "amount": row["total"] or ZERO})
        if row.get("recent_count"):
            recent_rows.append({"currency": row["code"], "amount": row["recent_total"] or ZERO})
    return overall, recent_rows


def dashboard_for_user(*, user: User) -> dict:
    """The signed-in user's dashboard (CONTRACT.md, `GET dashboard/user/`). 4 queries."""
    now = timezone.now()
    bookings = Booking.objects.filter(user=user)
    active = seat_holding_q(now)
    ended = Q(session_end__lte=now)
    with_end = bookings.alias(session_end=session_end_time("session__"))
    counts = with_end.aggregate(
        upcoming=Count("pk", filter=active & ~ended),
        past=Count("pk", filter=active & ended),
        cancelled=Count("pk", filter=Q(status=Status.CANCELLED)),
    )
    total_spent, _ = money_by_currency(bookings)
    listed = with_end.select_related("session__creator")
    upcoming = listed.filter(active & ~ended).order_by("session__start_time", "pk")
    past = listed.filter(active & ended).order_by("-session__start_time", "-pk")
    return {
        "profile": user,
        "stats": {**counts, "total_spent": total_spent},
        "upcoming_bookings": list(upcoming[:UPCOMING_BOOKINGS_LIMIT]),
        "past_bookings": list(past[:PAST_BOOKINGS_LIMIT]),
    }


def creator_bookings(*, creator: User) -> QuerySet[Booking]:
    """Every booking of the creator's sessions.

    On PostgreSQL as `session_id = ANY(ARRAY(<the creator's session ids>))`: the array is
    computed once and probes the bookings' session index. The plain join
    (`session__creator=creator`) was planned as a scan of every booking of the site, so a
    creator's dashboard grew with everyone's bookings (bench/growth.py).
    """
    if connection.vendor == "postgresql":
        own_sessions = Session.objects.owned_by(creator).order_by().values("pk")
        return Booking.objects.filter(Q(EqualsAnyOf(F("session_id"), own_sessions)))
    return Booking.objects.filter(session__creator=creator)


def dashboard_for_creator(*, creator: User) -> dict:
    """A creator's dashboard (CONTRACT.md, `GET dashboard/creator/`). 8 queries.

    fill_rate: over the creator's published sessions that have ended, the seats of their
    confirmed bookings divided by their total capacity (seat-weighted, not an average of
    ratios), rounded to 4 decimals; null when there is no such session. It is not capped at 1:
    a capacity lowered below the seats already sold shows as over 1.
    """
    now = timezone.now()
    sessions = Session.objects.owned_by(creator).alias(end=session_end_time())
    ended = Q(end__lte=now)
    past_published = Q(status=PUBLISHED) & ended
    confirmed_seats = (
        Booking.objects.filter(session=OuterRef("pk"), status=Status.CONFIRMED)
        .order_by()
        .values("session")
        .annotate(total=Sum("seats"))
        .values("total")
    )
    session_stats = sessions.aggregate(
        draft=Count("pk", filter=Q(status=Session.Status.DRAFT)),
        published=Count("pk", filter=Q(status=PUBLISHED)),
        cancelled=Count("pk", filter=Q(status=Session.Status.CANCELLED)),
        upcoming=Count("pk", filter=Q(status=PUBLISHED) & ~ended),
        past_capacity=Sum("capacity", filter=past_published),
        past_confirmed_seats=Sum(
            Subquery(confirmed_seats, output_field=IntegerField()), filter=past_published
        ),
    )
    fill_rate = None
    if session_stats["past_capacity"]:
        ratio = (session_stats["past_confirmed_seats"] or 0) / session_stats["past_capacity"]
        fill_rate = round(ratio, FILL_RATE_DECIMALS)

    bookings = creator_bookings(creator=creator)
    confirmed_attendees = bookings.filter(status=Status.CONFIRMED).aggregate(
        total=Coalesce(Sum("seats"), 0)
    )["total"]
    revenue, revenue_recent = money_by_currency(
        bookings, recent_since=now - timedelta(days=REVENUE_RECENT_DAYS)
    )

    holding = Booking.objects.filter(seat_holding_q(now), session=OuterRef("pk")).order_by()
    seats_taken = holding.values("session").annotate(total=Sum("seats")).values("total")
    bookings_count = holding.values("session").annotate(total=Count("pk")).values("total")
    upcoming_sessions = (
        sessions.filter(Q(status=PUBLISHED) & ~ended)
        .annotate(
            seats_taken=Coalesce(Subquery(seats_taken), 0),
            bookings_count=Coalesce(Subquery(bookings_count), 0),
        )
        .order_by("start_time", "pk")[:UPCOMING_SESSIONS_LIMIT]
    )
    # The ten ids first, then their sessions and users: joined before the LIMIT, PostgreSQL
    # hash-joined every session of the site to find ten bookings (bench/growth.py).
    recent_ids = bookings.order_by("-created_at", "-pk").values("pk")[:RECENT_BOOKINGS_LIMIT]
    recent_bookings = (
        Booking.objects.filter(pk__in=Subquery(recent_ids))
        .select_related("session", "user")
        .order_by("-created_at", "-pk")
    )
    # Sessions that run only if enough people book, still to be decided (issue 25).
    waiting_for_minimum = (
        sessions.filter(status=PUBLISHED, min_attendees__isnull=False, decided_at__isnull=True)
        .annotate(committed_seats=committed_seats_expression(now))
        .order_by("decision_at", "pk")[:UPCOMING_SESSIONS_LIMIT]
    )
    return {
        "stats": {
            "sessions": {
                "draft": session_stats["draft"],
                "published": session_stats["published"],
                "cancelled": session_stats["cancelled"],
            },
            "upcoming_sessions": session_stats["upcoming"],
            "confirmed_attendees": confirmed_attendees,
            "revenue": revenue,
            "revenue_last_30_days": revenue_recent,
            "fill_rate": fill_rate,
            # Stripe Connect (CONTRACT.md, "Creators get paid"): the creator's share and fees.
            **earnings_for(bookings=bookings, creator=creator),
        },
        "upcoming_sessions": list(upcoming_sessions),
        "recent_bookings": list(recent_bookings[:RECENT_BOOKINGS_LIMIT]),
        "waiting_for_minimum": list(waiting_for_minimum),
    }
