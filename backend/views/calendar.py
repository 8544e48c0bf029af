"""The subscribable calendar feed: `GET /api/calendar/<token>.ics`, no JWT.

Calendar apps (Google, Apple, Outlook; `webcal://` links) cannot send a Bearer token, so the
URL's secret is the authentication: 256 random bits per user, replaced by
`POST /api/users/calendar_token/rotate/`. Anything but a current token is the same 404.
"""

import hashlib

from drf_yasg import openapi
from drf_yasg.utils import swagger_auto_schema
from rest_framework import status
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from backend.models import User
from backend.selectors.calendar import calendar_feed, calendar_feed_owner
from backend.views.bookings import NOT_FOUND, CalendarContentNegotiation, ICalendarRenderer

# Calendar apps poll on their own schedule (Google: hours); a shared cache must never keep one
# person's feed, and a conditional request (If-None-Match) is answered 304 without the body.
FEED_CACHE_CONTROL = "private, max-age=300"


class CalendarFeedView(APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]
    renderer_classes = [ICalendarRenderer]
    content_negotiation_class = CalendarContentNegotiation
    # Never read: it tells the schema what the path parameter is (the model field's help text).
    queryset = User.objects.none()

    @swagger_auto_schema(
        operation_summary="My calendar feed (subscribe to it; no sign-in)",
        operation_description=(
            "An RFC 5545 calendar of the owner's confirmed bookings and, for a creator, their "
            "published sessions, from 30 days ago on; times in each session's zone (TZID with "
            "VTIMEZONE). The URL is `calendar_feed_url` of `GET /api/users/me/` (use it as "
            "`webcal://...` to subscribe); it is a secret: a rotated or unknown token is a 404. "
            "`ETag` and `Cache-Control: private`; `If-None-Match` gives 304 when unchanged."
        ),
        security=[],
        responses={
            200: openapi.Response(
                "The feed (text/calendar)",
                openapi.Schema(type=openapi.TYPE_STRING, format="binary"),
            ),
            304: "Unchanged since the ETag sent in If-None-Match.",
            **NOT_FOUND,
        },
    )
    def get(self, request, calendar_token: str):
        owner = calendar_feed_owner(token=calendar_token)
        body = calendar_feed(owner=owner)
        etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
        headers = {
            "ETag": etag,
            "Cache-Control": FEED_CACHE_CONTROL,
            # The URL is the secret: never passed on to a page linked from an event.
            "Referrer-Policy": "no-referrer",
            "Content-Disposition": 'inline; filename="sessions-marketplace.ics"',
        }
        if etag in {tag.strip() for tag in request.headers.get("If-None-Match", "").split(",")}:
            return Response(status=status.HTTP_304_NOT_MODIFIED, headers=headers)
        return Response(body, content_type="text/calendar; charset=utf-8", headers=headers)
