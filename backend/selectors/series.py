"""Series reads: one series of its creator, with every date as the catalog shows it."""

from django.db.models import Prefetch
from django.utils import timezone

from backend.models import Session, SessionSeries, User
from backend.selectors.catalog import sessions_annotated


def series_get_for_creator(
    *, creator: User, series_id: int, with_occurrences: bool = True
) -> SessionSeries | None:
    """The creator's own series, or None (anyone else's too: callers answer 404).

    `with_occurrences`: every date comes along as `occurrences`, first to last, annotated as in
    the catalog: two queries whatever the number of dates.
    """
    series = SessionSeries.objects.filter(pk=series_id, creator_id=creator.pk)
    if with_occurrences:
        occurrences = sessions_annotated(viewer=creator).order_by("series_position", "id")
        series = series.prefetch_related(
            Prefetch("sessions", queryset=occurrences, to_attr="occurrences")
        )
    return series.first()


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
