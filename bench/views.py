"""The baselines: the catalog's pages, written as plainly as Django allows.

Same rows (published, not started, soonest first, 20 a page), same fields (with `seats_left`
and the creator) and the same count query as `GET /api/sessions/`, but a `.values()` query and
`JsonResponse`: no DRF, no serializer, no filter set, no validation. The same for one session,
for `?page=`, for the bench's filters and for a search (the search's WHERE and rank are the
catalog's own expressions, `catalog_search`: the stored vector is not a model field, and the
point is the same rows and SQL). Our views' CPU and requests per second divided by these views'
are the ratios bench/cpu.py and bench/run.sh report.
"""

from datetime import timedelta
from decimal import Decimal

from django.db.models import F, IntegerField, Value
from django.db.models.functions import Greatest
from django.http import JsonResponse
from django.utils import timezone

from backend.booking_rules import default_refund_policy
from backend.models import Session
from backend.selectors.catalog import (
    _seats_taken_expression,
    catalog_search,
    committed_seats_expression,
)

PAGE_SIZE = 20
FIELDS = (
    "id",
    "title",
    "description",
    "category",
    "price",
    "currency",
    "duration_minutes",
    "start_time",
    "capacity",
    "location",
    "is_online",
    "image",
    "status",
    "created_at",
    "updated_at",
    "creator_id",
    "creator__username",
    "creator__first_name",
    "creator__last_name",
    "creator__avatar",
    "creator__avatar_url",
    "creator__creator_rating__average",
    "creator__creator_rating__review_count",
    "timezone",
    "series_id",
    "series_position",
    "series__occurrence_count",
    "refund_policy",
    "min_attendees",
    "decision_at",
    "decision",
    "cancel_reason",
)


def _plain_entry(row: dict) -> dict:
    average = row["creator__creator_rating__average"]
    rating_count = row["creator__creator_rating__review_count"] or 0
    policy = row["refund_policy"] or default_refund_policy()
    return {
        "id": row["id"],
        "creator": {
            "id": row["creator_id"],
            "username": row["creator__username"],
            "first_name": row["creator__first_name"],
            "last_name": row["creator__last_name"],
            # Like User.avatar_link without the storage call (bench users have none).
            "avatar": row["creator__avatar"] or row["creator__avatar_url"] or None,
            "rating": {
                "average": float(average) if average is not None and rating_count else None,
                "count": rating_count,
            },
        },
        "title": row["title"],
        "description": row["description"],
        "category": row["category"],
        "price": str(row["price"]),
        "currency": row["currency"],
        "duration_minutes": row["duration_minutes"],
        "start_time": row["start_time"],
        "end_time": row["start_time"] + timedelta(minutes=row["duration_minutes"]),
        "capacity": row["capacity"],
        "seats_left": row["seats_left"],
        "location": row["location"],
        "is_online": row["is_online"],
        "meeting_url": None,
        "image": row["image"] or None,
        "status": row["status"],
        "timezone": row["timezone"],
        "series": row["series_id"],
        "series_position": row["series_id"]
        and {"index": row["series_position"], "count": row["series__occurrence_count"]},
        "refund_policy": sorted(policy, key=lambda tier: tier["hours_before"], reverse=True),
        "min_attendees": row["min_attendees"],
        "decision_at": row["decision_at"],
        "committed_seats": row["committed_seats"],
        "seats_to_go": max((row["min_attendees"] or 0) - row["committed_seats"], 0),
        "decision": row["decision"],
        "cancel_reason": row["cancel_reason"],
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
    }


def baseline_detail(request, session_id: int):
    """One session, as plainly: the yardstick of `GET /api/sessions/{id}/` (bench/cpu.py)."""
    now = timezone.now()
    seats_left = Greatest(F("capacity") - F("held"), Value(0), output_field=IntegerField())
    row = (
        Session.objects.filter(pk=session_id, status__in=["published", "cancelled"])
        .alias(held=_seats_taken_expression(now))
        .annotate(seats_left=seats_left, committed_seats=committed_seats_expression(now))
        .values(*FIELDS, "seats_left", "committed_seats")
        .first()
    )
    if row is None:
        return JsonResponse({"code": "not_found", "detail": "Not found."}, status=404)
    return JsonResponse(_plain_entry(row))


def baseline_catalog(request):
    """`?page=`, and the filters bench/cpu.py sends: category, min_price, max_price,
    is_online, available, ordering (one field), search."""
    now = timezone.now()
    query = request.GET
    listed = Session.objects.filter(status=Session.Status.PUBLISHED, start_time__gt=now)
    if "category" in query:
        listed = listed.filter(category__iexact=query["category"])
    if "min_price" in query:
        listed = listed.filter(price__gte=Decimal(query["min_price"]))
    if "max_price" in query:
        listed = listed.filter(price__lte=Decimal(query["max_price"]))
    if "is_online" in query:
        listed = listed.filter(is_online=query["is_online"] == "true")
    seats_left = Greatest(F("capacity") - F("held"), Value(0), output_field=IntegerField())
    listed = listed.alias(held=_seats_taken_expression(now)).annotate(seats_left=seats_left)
    if query.get("available") == "true":
        listed = listed.filter(seats_left__gt=0)
    ordering = ["start_time", "id"]
    if "search" in query:
        listed = catalog_search(listed, query["search"])
        ordering = ["-search_rank", "start_time", "id"]
    if "ordering" in query:
        field = query["ordering"]
        ordering = [field, "-id" if field.startswith("-") else "id"]
    count = listed.count()
    page = int(query.get("page", 1))
    bottom = (page - 1) * PAGE_SIZE
    listed = listed.annotate(committed_seats=committed_seats_expression(now))
    rows = listed.order_by(*ordering).values(*FIELDS, "seats_left", "committed_seats")
    rows = rows[bottom : bottom + PAGE_SIZE]
    results = [_plain_entry(row) for row in rows]
    next_url = request.build_absolute_uri(f"?page={page + 1}") if count > page * PAGE_SIZE else None
    return JsonResponse({"count": count, "next": next_url, "previous": None, "results": results})
