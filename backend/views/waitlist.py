"""Waitlist API (CONTRACT.md, "Waitlist"): thin views over services/selectors/waitlist.

`sessions/{id}/waitlist/`: POST joins, DELETE leaves (signed-in users), GET lists the session's
entries (its creator only; 404 for anyone else, as `sessions/{id}/bookings/`). `waitlist/`: my
entries in every status.
"""

from django.shortcuts import get_object_or_404
from drf_yasg.utils import swagger_auto_schema
from rest_framework import status
from rest_framework.generics import GenericAPIView
from rest_framework.response import Response

from backend.models import Session, WaitlistEntry
from backend.schema import PAGE_PARAMS
from backend.selectors import waitlist as selectors
from backend.serializers.waitlist import (
    SessionWaitlistEntryPageSerializer,
    SessionWaitlistEntrySerializer,
    WaitlistEntryPageSerializer,
    WaitlistEntrySerializer,
    WaitlistJoinSerializer,
)
from backend.services import waitlist as services
from backend.views.reviews import error_response

OFFERS = (
    "When seats free up (a cancellation, an expired hold or offer, a capacity raise), the "
    "earliest waiting entries that fit get an offer: a pending booking (`booking`) holding the "
    "seats until `offer_expires_at` (WAITLIST_OFFER_MINUTES), confirmed at once for a free "
    "session, and an e-mail. An unpaid offer expires and passes to the next entry. An entry "
    "wanting more seats than are free keeps its place, and a later entry that fits is served "
    "meanwhile."
)


class SessionWaitlistView(GenericAPIView):
    """`sessions/{id}/waitlist/`: join, leave, and the creator's list."""

    serializer_class = WaitlistEntrySerializer
    # Only tells drf-yasg that `{id}` is a session's integer id; services read the session.
    queryset = Session.objects.none()

    @swagger_auto_schema(
        operation_id="sessions_waitlist_list",
        operation_summary="A session's waitlist (its creator)",
        operation_description=(
            "Every entry in every status, in the order they are served; `position` counts the "
            "waiting entries only."
        ),
        manual_parameters=PAGE_PARAMS,
        responses={
            200: SessionWaitlistEntryPageSerializer,
            404: error_response("Unknown session, or not yours."),
        },
    )
    def get(self, request, pk: str):
        session = get_object_or_404(Session.objects.owned_by(request.user), pk=int(pk))
        page = self.paginate_queryset(selectors.waitlist_for_session(session=session))
        return self.get_paginated_response(SessionWaitlistEntrySerializer(page, many=True).data)

    @swagger_auto_schema(
        operation_id="sessions_waitlist_join",
        operation_summary="Join a full session's waitlist",
        operation_description=(
            "Only while that many seats are not free (409 `seats_available`: book them). "
            "409 also for `already_waiting`, `already_booked`, `own_session`, `not_bookable`, "
            f"`session_started`. {OFFERS}"
        ),
        request_body=WaitlistJoinSerializer,
        responses={
            201: WaitlistEntrySerializer,
            404: error_response("Unknown session, or someone else's draft."),
            409: error_response("Seats are free, already waiting or booked, not bookable."),
        },
    )
    def post(self, request, pk: str):
        payload = WaitlistJoinSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        entry = services.waitlist_join(
            user=request.user, session_id=int(pk), seats=payload.validated_data["seats"]
        )
        entry = selectors.waitlist_entry_for_user(user=request.user, entry_id=entry.pk)
        return Response(WaitlistEntrySerializer(entry).data, status=status.HTTP_201_CREATED)

    @swagger_auto_schema(
        operation_id="sessions_waitlist_leave",
        operation_summary="Leave a session's waitlist",
        operation_description=(
            "The entry becomes `left`; an open offer is withdrawn (its booking cancelled) and "
            "its seats go to the next entry."
        ),
        responses={204: "Left", 404: error_response("Not on this session's waitlist.")},
    )
    def delete(self, request, pk: str):
        services.waitlist_leave(user=request.user, session_id=int(pk))
        return Response(status=status.HTTP_204_NO_CONTENT)


class MyWaitlistView(GenericAPIView):
    """`waitlist/`: the signed-in user's entries."""

    serializer_class = WaitlistEntrySerializer
    queryset = WaitlistEntry.objects.none()

    @swagger_auto_schema(
        operation_id="waitlist_list",
        operation_summary="My waitlist entries",
        operation_description=f"Every status, latest first. {OFFERS}",
        manual_parameters=PAGE_PARAMS,
        responses={200: WaitlistEntryPageSerializer},
    )
    def get(self, request):
        page = self.paginate_queryset(selectors.waitlist_for_user(user=request.user))
        return self.get_paginated_response(WaitlistEntrySerializer(page, many=True).data)
