"""The baseline: the catalog's first page, written as plainly as Django allows.

Same rows (published, not started, soonest first, 20 a page), same fields (with `seats_left`
and the creator) and the same count query as `GET /api/sessions/`, but a `.values()` query and
`JsonResponse`: no DRF, no serializer, no filter set. Our list's requests per second divided by
this view's is the ratio bench/run.sh reports.
"""

from datetime import timedelta

from django.db.models import F, IntegerField, Value
from django.db.models.functions import Greatest
from django.http import JsonResponse
from django.utils import timezone

from backend.models import Session
from backend.selectors.catalog import _seats_taken_expression

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
)


def _plain_entry(row: dict) -> dict:
    return {
        "id": row["id"],
        "creator": {
            "id": row["creator_id"],
            "username": row["creator__username"],
            "first_name": row["creator__first_name"],
            "last_name": row["creator__last_name"],
            # Like User.avatar_link without the storage call (bench users have none).
            "avatar": row["creator__avatar"] or row["creator__avatar_url"] or None,
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
        .annotate(seats_left=seats_left)
        .values(*FIELDS, "seats_left")
        .first()
    )
    if row is None:
        return JsonResponse({"code": "not_found", "detail": "Not found."}, status=404)
    return JsonResponse(_plain_entry(row))


def baseline_catalog(request):
    now = timezone.now()
    listed = Session.objects.filter(status=Session.Status.PUBLISHED, start_time__gt=now)
    count = listed.count()
    seats_left = Greatest(F("capacity") - F("held"), Value(0), output_field=IntegerField())
    rows = (
        listed.alias(held=_seats_taken_expression(now))
        .annotate(seats_left=seats_left)
        .order_by("start_time", "id")
        .values(*FIELDS, "seats_left")[:PAGE_SIZE]
    )
    results = [_plain_entry(row) for row in rows]
    next_url = request.build_absolute_uri("?page=2") if count > PAGE_SIZE else None
    return JsonResponse({"count": count, "next": next_url, "previous": None, "results": results})
