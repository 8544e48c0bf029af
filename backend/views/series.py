"""`/api/sessions/series/`: recurring sessions (CONTRACT.md "Series"; README "Series")."""

from typing import cast

from django.http import Http404
from drf_yasg.utils import swagger_auto_schema
from rest_framework import generics, status
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response

from backend.models import SessionSeries, User
from backend.permissions import IsCreator
from backend.selectors import series as selectors
from backend.serializers.series import (
    SessionSeriesCreateSerializer,
    SessionSeriesSerializer,
    SessionSeriesUpdateSerializer,
)
from backend.services import series as services

RULE_ERRORS = (
    "Invalid input, or a rule the series cannot have, with the reason and a `code`: "
    "`invalid_rrule`, `unsupported_rrule`, `rrule_unbounded` (no COUNT or UNTIL), "
    "`too_many_occurrences` (over 52), `occurrence_in_past`, `occurrence_too_far` (over 5 "
    "years), `no_occurrences`. Nothing is created."
)


def series_response(
    request: Request, series_id: int, status_code: int = status.HTTP_200_OK
) -> Response:
    """The series as its creator sees it (404 for anyone else)."""
    series = selectors.series_get_for_creator(creator=signed_in(request), series_id=series_id)
    if series is None:
        raise Http404
    return Response(
        SessionSeriesSerializer(series, context={"request": request}).data, status=status_code
    )


def signed_in(request: Request) -> User:
    """The caller; the views' permission classes let only signed-in users through."""
    return cast(User, request.user)


class SessionSeriesCreateView(generics.GenericAPIView):
    permission_classes = [IsCreator]
    queryset = SessionSeries.objects.none()
    serializer_class = SessionSeriesCreateSerializer

    @swagger_auto_schema(
        operation_id="sessions_series_create",
        operation_summary="Create a recurring session (creators)",
        operation_description=(
            "One session per date of `rrule` (RFC 5545: FREQ DAILY, WEEKLY, MONTHLY or YEARLY; "
            "BYDAY, INTERVAL, BYMONTHDAY, ...; COUNT or UNTIL required; at most 52 dates, none "
            "in the past, within 5 years), each starting at `local_start`'s wall-clock time in "
            "`timezone` whatever the DST offset. UNTIL is `...Z` (UTC), floating (local) or a "
            "date (that whole day). Every date is an ordinary session (`series`, "
            "`series_position`): booked, edited and cancelled like any other."
        ),
        request_body=SessionSeriesCreateSerializer,
        responses={201: SessionSeriesSerializer, 400: RULE_ERRORS, 403: "Not a creator"},
    )
    def post(self, request: Request) -> Response:
        serializer = SessionSeriesCreateSerializer(data=request.data, context={"request": request})
        serializer.is_valid(raise_exception=True)
        series = services.series_create(creator=signed_in(request), **serializer.validated_data)
        return series_response(request, series.pk, status.HTTP_201_CREATED)


class SessionSeriesDetailView(generics.GenericAPIView):
    """Only the series' creator sees it; anyone else gets 404."""

    permission_classes = [IsAuthenticated]
    queryset = SessionSeries.objects.none()
    serializer_class = SessionSeriesSerializer
    http_method_names = ["get", "patch", "delete", "head", "options"]

    @swagger_auto_schema(
        operation_id="sessions_series_read",
        operation_summary="A series and all its dates (its creator)",
        operation_description="Every date, started and cancelled ones too, first to last.",
        responses={200: SessionSeriesSerializer, 404: "Unknown, or not yours"},
    )
    def get(self, request: Request, pk: int) -> Response:
        return series_response(request, int(pk))

    @swagger_auto_schema(
        operation_id="sessions_series_partial_update",
        operation_summary="Change the dates not started yet (its creator)",
        operation_description=(
            "Applies the fields to every date that has not started and is not cancelled; "
            "started dates stay as they were. A price change applies to new bookings only "
            "(existing bookings keep their amount). `local_start` moves every upcoming date "
            "by the same wall-clock difference (DST-correct); attendees of a moved date are "
            "e-mailed. `rrule` and `timezone` cannot change (400). All or nothing: a date "
            "that refuses (capacity below seats taken: 409) changes none."
        ),
        request_body=SessionSeriesUpdateSerializer,
        responses={
            200: SessionSeriesSerializer,
            400: "Invalid input, a date moved into the past (`start_time_past`)",
            404: "Unknown, or not yours",
            409: "A date refuses the change, or no date is left to change (`series_finished`)",
        },
    )
    def patch(self, request: Request, pk: int) -> Response:
        series = selectors.series_get_for_creator(
            creator=signed_in(request), series_id=int(pk), with_occurrences=False
        )
        if series is None:
            raise Http404
        # The cross-field checks merge with one date: the next upcoming one, else the last.
        template = selectors.series_next_occurrence(
            series=series
        ) or selectors.series_last_occurrence(series=series)
        serializer = SessionSeriesUpdateSerializer(
            template, data=request.data, partial=True, context={"request": request}
        )
        serializer.is_valid(raise_exception=True)
        services.series_update(
            series_id=series.pk, actor=signed_in(request), data=dict(serializer.validated_data)
        )
        return series_response(request, series.pk)

    @swagger_auto_schema(
        operation_id="sessions_series_delete",
        operation_summary="Cancel the dates not started yet (its creator)",
        operation_description=(
            "Cancels every date that has not started, as `DELETE /api/sessions/{id}/` would a "
            "booked session: its bookings are cancelled and paid ones refunded. Started dates "
            "stay. The series and its dates stay on record; answers the series (200). "
            "Repeating it cancels and refunds nothing more."
        ),
        responses={200: SessionSeriesSerializer, 404: "Unknown, or not yours"},
    )
    def delete(self, request: Request, pk: int) -> Response:
        series = services.series_cancel(series_id=int(pk), actor=signed_in(request))
        return series_response(request, series.pk)
