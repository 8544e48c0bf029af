"""Bookings API (CONTRACT.md, "Bookings"): thin views over services/selectors/bookings.

Visibility: the booking's user and the session's creator see a booking; for anyone else it
does not exist (404), whatever the method. The services enforce it for writes, the selectors
for reads.
"""

from typing import cast

from drf_yasg import openapi
from drf_yasg.utils import no_body, swagger_auto_schema
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.response import Response

from backend.filters import BookingFilter
from backend.models import Booking, User
from backend.schema import PAGE_PARAMS, filterset_parameters
from backend.selectors import bookings as selectors
from backend.selectors import calendar as calendar_selectors
from backend.serializers.bookings import (
    BookingCreateSerializer,
    BookingEventPageSerializer,
    BookingEventSerializer,
    BookingRescheduleSerializer,
    BookingSerializer,
    BookingUpdateSerializer,
    CancelQuoteSerializer,
)
from backend.services import bookings as services
from backend.services import reschedule as reschedule_services
from backend.views.idempotency import IDEMPOTENCY_KEY_PARAMETER, idempotent

error_response = openapi.Response(
    "Error",
    openapi.Schema(
        type=openapi.TYPE_OBJECT,
        properties={
            "detail": openapi.Schema(type=openapi.TYPE_STRING),
            "code": openapi.Schema(type=openapi.TYPE_STRING),
        },
    ),
)
NOT_FOUND = {404: error_response}
# The list filters, typed and described (drf-yasg does not read django-filter's).
LIST_FILTERS = filterset_parameters(BookingFilter)
CONFLICT = {409: error_response}


class ICalendarRenderer(BaseRenderer):
    """text/calendar for the `.ics` endpoint; the view hands it the finished bytes."""

    media_type = "text/calendar"
    format = "ics"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        return data


class CalendarContentNegotiation(BaseContentNegotiation):
    """A download link answers text/calendar whatever the Accept header says."""

    def select_parser(self, request, parsers):
        return parsers[0] if parsers else None

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


class BookingViewSet(viewsets.GenericViewSet):
    # Never read directly (see get_queryset); it tells the schema that `{id}` is an integer.
    queryset = Booking.objects.none()
    serializer_class = BookingSerializer
    lookup_value_regex = r"[0-9]+"
    filterset_class = BookingFilter

    def get_queryset(self):
        # Only for the filter backend and the schema; the endpoints read through selectors.
        if getattr(self, "swagger_fake_view", False):
            return Booking.objects.none()
        # IsAuthenticated ran first: the user is a signed-in User, not AnonymousUser.
        return Booking.objects.filter(user=cast(User, self.request.user))

    def handle_exception(self, exc):
        # Errors of the calendar endpoint stay JSON, like every other API error.
        if getattr(self, "action", None) == "calendar":
            self.request.accepted_renderer = JSONRenderer()
            self.request.accepted_media_type = JSONRenderer.media_type
        return super().handle_exception(exc)

    def _paginated(self, queryset):
        page = self.paginate_queryset(self.filter_queryset(queryset))
        return self.get_paginated_response(
            BookingSerializer(page, many=True, context={"request": self.request}).data
        )

    @swagger_auto_schema(
        operation_summary="My bookings, newest first",
        operation_description=(
            "Every booking of the signed-in user, in any status, paginated; filter by `status`, "
            "`payment_status` or `session`. Pending bookings past their hold show as expired."
        ),
        manual_parameters=LIST_FILTERS,
    )
    def list(self, request):
        return self._paginated(selectors.booking_list_for_user(user=request.user))

    @swagger_auto_schema(
        operation_summary="My bookings, newest first (same as the list)",
        operation_description="The same as `GET /api/bookings/`, with the same filters.",
        manual_parameters=LIST_FILTERS,
    )
    @action(detail=False, methods=["get"])
    def my_bookings(self, request):
        return self._paginated(selectors.booking_list_for_user(user=request.user))

    @swagger_auto_schema(
        operation_summary="My upcoming pending or confirmed bookings, soonest first",
        operation_description=(
            "Bookings that hold seats (confirmed, or pending within their hold) of sessions "
            "that have not started, soonest first; the filters narrow it further."
        ),
        manual_parameters=LIST_FILTERS,
    )
    @action(detail=False, methods=["get"])
    def active(self, request):
        return self._paginated(selectors.booking_list_active(user=request.user))

    @swagger_auto_schema(
        operation_summary="My bookings of sessions that have ended, latest first",
        operation_description=(
            "Bookings in any status of sessions that have ended, the latest first; the filters "
            "narrow it further."
        ),
        manual_parameters=LIST_FILTERS,
    )
    @action(detail=False, methods=["get"])
    def past(self, request):
        return self._paginated(selectors.booking_list_past(user=request.user))

    @swagger_auto_schema(
        operation_summary="Book a session",
        operation_description=(
            "Free sessions are confirmed at once; paid sessions are held (pending, unpaid) "
            "until `hold_expires_at`: BOOKING_HOLD_MINUTES from now, or, for a user who "
            "cancelled an unpaid hold of this session that would still be running, that "
            "hold's end. 409: sold out, not enough seats, already booked, own session, not "
            "open for booking, already started, `too_many_holds` (MAX_UNPAID_BOOKINGS unpaid "
            "holds already)."
        ),
        request_body=BookingCreateSerializer,
        manual_parameters=[IDEMPOTENCY_KEY_PARAMETER],
        responses={201: BookingSerializer, **NOT_FOUND, **CONFLICT},
    )
    @idempotent
    def create(self, request):
        payload = BookingCreateSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        booking = services.booking_create(
            user=request.user, session_id=data["session"], seats=data["seats"], notes=data["notes"]
        )
        return Response(
            BookingSerializer(booking, context={"request": request}).data,
            status=status.HTTP_201_CREATED,
        )

    @swagger_auto_schema(
        operation_summary="One booking (its user or the session's creator)",
        operation_description=(
            "Visible to the booking's user and to the session's creator; for anyone else it "
            "does not exist (404)."
        ),
        responses={200: BookingSerializer, **NOT_FOUND},
    )
    def retrieve(self, request, pk=None):
        booking = selectors.booking_get_visible(user=request.user, booking_id=int(pk))
        return Response(BookingSerializer(booking, context={"request": request}).data)

    def _update(self, request, pk):
        # What the client sees now: read-only fields may be sent back unchanged, not changed.
        current = BookingSerializer(
            selectors.booking_get_visible(user=request.user, booking_id=int(pk)),
            context={"request": request},
        ).data
        payload = BookingUpdateSerializer(data=request.data, context={"current": current})
        payload.is_valid(raise_exception=True)
        booking = services.booking_update(
            booking_id=int(pk), actor=request.user, **payload.validated_data
        )
        return Response(BookingSerializer(booking, context={"request": request}).data)

    update_schema = swagger_auto_schema(
        operation_summary="Change notes, or seats while pending and unpaid (the booking's user)",
        operation_description=(
            "`notes` any time, `seats` while pending and unpaid (the amount follows; 409 when "
            "not enough seats are free). A different value for a read-only field (`status`, "
            "`payment_status`, `amount`, `currency`, `session`, `user`, the timestamps) is a 400 "
            "naming each one (code `read_only`) and changes nothing: status changes go through "
            "`confirm/`, `cancel/` and the payment. Sending back the values received is allowed. "
            "The session's creator gets 403."
        ),
        request_body=BookingUpdateSerializer,
        responses={200: BookingSerializer, 403: error_response, **NOT_FOUND, **CONFLICT},
    )

    @update_schema
    def update(self, request, pk=None):
        return self._update(request, pk)

    @update_schema
    def partial_update(self, request, pk=None):
        return self._update(request, pk)

    @swagger_auto_schema(
        operation_summary="Confirm a pending booking (the session's creator)",
        operation_description="409 for an unpaid booking of a paid session or a non-pending one.",
        request_body=no_body,
        responses={200: BookingSerializer, 403: error_response, **NOT_FOUND, **CONFLICT},
    )
    @action(detail=True, methods=["post"])
    def confirm(self, request, pk=None):
        booking = services.booking_confirm(booking_id=int(pk), actor=request.user)
        return Response(BookingSerializer(booking, context={"request": request}).data)

    @swagger_auto_schema(
        operation_summary="Cancel a booking (its user before the start, or the creator)",
        operation_description="A paid booking is refunded. The seats are free at once.",
        request_body=no_body,
        manual_parameters=[IDEMPOTENCY_KEY_PARAMETER],
        responses={200: BookingSerializer, **NOT_FOUND, **CONFLICT},
    )
    @action(detail=True, methods=["post"])
    @idempotent
    def cancel(self, request, pk=None):
        booking = services.booking_cancel(booking_id=int(pk), actor=request.user)
        return Response(BookingSerializer(booking, context={"request": request}).data)

    @swagger_auto_schema(
        operation_summary="Move a confirmed booking to another session (its user or creator)",
        operation_description=(
            "To another published, not-started session of the same creator with the same "
            "price and currency; the booking keeps its id, seats and payment. Its user may do "
            "it while cancelling would refund it in full, the creator at any time. 409 when the "
            "target is full, priced differently, or the move is not allowed."
        ),
        request_body=BookingRescheduleSerializer,
        responses={200: BookingSerializer, 400: error_response, **NOT_FOUND, **CONFLICT},
    )
    @action(detail=True, methods=["post"])
    def reschedule(self, request, pk=None):
        serializer = BookingRescheduleSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        booking = reschedule_services.booking_reschedule(
            booking_id=int(pk), actor=request.user, session_id=serializer.validated_data["session"]
        )
        return Response(BookingSerializer(booking, context={"request": request}).data)

    @swagger_auto_schema(
        operation_summary="What cancelling the booking now would refund (its user or creator)",
        operation_description=(
            "The cancellation rule applied now, without cancelling: whether it is allowed and "
            "the refund (the session's `refund_policy` for its user; 100 % for the creator, or "
            "after the creator moved the session's time)."
        ),
        responses={200: CancelQuoteSerializer, **NOT_FOUND},
    )
    @action(detail=True, methods=["get"], filterset_class=None)
    def cancel_quote(self, request, pk=None):
        quote = selectors.booking_cancel_quote(user=request.user, booking_id=int(pk))
        return Response(CancelQuoteSerializer(quote).data)

    @swagger_auto_schema(
        operation_summary="The booking's audit trail (its user or the session's creator)",
        operation_description=(
            "Every change of the booking, oldest first: who made it (null: the system or "
            "Stripe), why, and the status, payment status and seats before and after."
        ),
        manual_parameters=PAGE_PARAMS,
        responses={200: BookingEventPageSerializer, **NOT_FOUND},
    )
    # Its own list: the booking list filters (BookingFilter) do not apply to events.
    @action(detail=True, methods=["get"], filterset_class=None)
    def events(self, request, pk=None):
        events = selectors.booking_events(user=request.user, booking_id=int(pk))
        page = self.paginate_queryset(events)
        return self.get_paginated_response(BookingEventSerializer(page, many=True).data)

    @swagger_auto_schema(
        operation_summary="The booking as an iCalendar (RFC 5545) event",
        operation_description=(
            "`text/calendar`, for Google Calendar, Outlook and Apple Calendar. Times in the "
            "session's time zone (`TZID`, with its `VTIMEZONE`; UTC sessions in UTC); a stable "
            "`UID` per booking and a `SEQUENCE` that grows when the booking's status or the "
            "session's time or place changes; the meeting link only for a confirmed booking."
        ),
        responses={
            200: openapi.Response(
                "An .ics file", openapi.Schema(type=openapi.TYPE_STRING, format="binary")
            ),
            **NOT_FOUND,
        },
    )
    def calendar(self, request, pk=None):
        booking = selectors.booking_get_visible(user=request.user, booking_id=int(pk))
        return Response(
            calendar_selectors.booking_calendar(booking=booking),
            content_type="text/calendar; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="booking-{booking.pk}.ics"'},
        )


# Routed by hand in backend/urls.py: the router would only give `calendar/` and, through its
# format-suffix patterns, `calendar.ics` as a by-product that the schema leaves out.
booking_calendar_view = BookingViewSet.as_view(
    {"get": "calendar"},
    detail=True,
    renderer_classes=[ICalendarRenderer],
    content_negotiation_class=CalendarContentNegotiation,
)
