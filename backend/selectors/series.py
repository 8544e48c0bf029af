"""Series reads: one series of its creator, with every date as the catalog shows it."""

from django.db.models import Prefetch
from django.utils import timezone

from backend.models import Session, SessionSeries, User
from backend.selectors.catalog import sessions_annotated


def series_get_for_creator(*, creator: User, series_id: int) -> SessionSeries | None:
    """The creator's own series with `occurrences` (every date, first to last), or None.

    Two queries whatever the number of dates: the series, then its annotated sessions.
    """
    occurrences = sessions_annotated(viewer=creator).order_by("series_position", "id")
    return (
        SessionSeries.objects.filter(pk=series_id, creator_id=creator.pk)
        .prefetch_related(Prefetch("sessions", queryset=occurrences, to_attr="occurrences"))
        .first()
    )


def series_next_occurrence(*, series: SessionSeries) -> Session | None:
    """The first date of the series a change would apply to (not started, not cancelled)."""
    return (
        series.sessions.filter(start_time__gt=timezone.now())
        .exclude(status=Session.Status.CANCELLED)
        .order_by("start_time", "id")
        .first()
    )


def series_last_occurrence(*, series: SessionSeries) -> Session | None:
    return series.sessions.order_by("-start_time", "-id").first()
