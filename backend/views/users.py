"""The signed-in user's own account: profile, profile edits, becoming a creator, and leaving
(the data export and the account deletion, backend/services/privacy.py)."""

from typing import cast

from drf_yasg import openapi
from drf_yasg.utils import no_body, swagger_auto_schema
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from backend.models import User
from backend.selectors.privacy import user_export
from backend.serializers.privacy import ExportSerializer
from backend.serializers.users import (
    CalendarFeedUrlSerializer,
    UserMeSerializer,
    UserProfileUpdateSerializer,
    calendar_feed_path,
)
from backend.services.privacy import user_delete
from backend.services.users import (
    user_become_creator,
    user_calendar_token_rotate,
    user_update_profile,
)
from backend.throttling import ScopedRateThrottle, UserRateThrottle


class UserViewSet(viewsets.GenericViewSet):
    serializer_class = UserMeSerializer
    # Only the caller's own account is reachable here; no list, no lookup by id.
    pagination_class = None
    # Set per action (`export`); ScopedRateThrottle ignores views without a scope.
    throttle_scope: str | None = None

    def get_queryset(self):
        # IsAuthenticated ran first: the user is a signed-in User, not AnonymousUser.
        return User.objects.filter(pk=cast(User, self.request.user).pk)

    def get_object(self):
        # The only object here is the caller (DRF's OPTIONS metadata asks for it too).
        return self.request.user

    @swagger_auto_schema(
        operation_summary="My profile",
        operation_description=(
            "The signed-in account's profile. Change names, bio and time zone with "
            "`update_profile/`, the avatar by uploading an image (`POST /api/storage/upload/`, "
            "`purpose=avatar`), the role with `become_creator/`. `calendar_feed_url` is the "
            "secret address of your calendar feed (`calendar_token/rotate/` replaces it)."
        ),
        responses={200: UserMeSerializer},
    )
    @action(detail=False, methods=["get"])
    def me(self, request):
        return Response(UserMeSerializer(request.user, context={"request": request}).data)

    @swagger_auto_schema(
        operation_summary="Delete my account",
        operation_description=(
            "Cancels your upcoming bookings (paid ones refunded per the cancellation rules; a "
            "paid booking inside the cancellation window is kept, not refunded), deletes your "
            "uploaded files, revokes every token and anonymises the account (username "
            "`deleted-<id>`, no name, e-mail, bio, avatar or OAuth identity; it cannot sign in "
            "again). Bookings and payments stay, anonymised, for accounting. A creator whose "
            "upcoming sessions have active bookings gets 409 `has_upcoming_sessions` and "
            "nothing changes; their other upcoming sessions are cancelled (or deleted if never "
            "booked). A 503 (storage down) leaves the account usable: retry."
        ),
        request_body=no_body,
        responses={
            204: "Deleted: the token used here no longer works.",
            409: "A state conflict: `has_upcoming_sessions` (cancel your booked upcoming "
            "sessions first), or a booking that could not be cancelled.",
        },
    )
    @me.mapping.delete
    def delete_me(self, request):
        user_delete(user=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @swagger_auto_schema(
        operation_summary="Export my data",
        operation_description=(
            "One JSON document (sent as an attachment) with everything held about you: "
            "profile, bookings with their audit events and payments, the sessions you created, "
            "your uploaded files with fresh URLs, and your sign-ins. Nothing about anyone else: "
            "other people's bookings are not included, and audit events name who acted by role "
            "only. Throttled (THROTTLE_EXPORT_RATE, default 10/hour)."
        ),
        responses={
            200: openapi.Response(
                "The export.",
                ExportSerializer,
                headers={
                    "Content-Disposition": openapi.Schema(
                        type=openapi.TYPE_STRING,
                        description='attachment; filename="sessions-marketplace-export-<id>.json"',
                    )
                },
            )
        },
    )
    @action(
        detail=False,
        methods=["get"],
        url_path="me/export",
        # Building the export reads every booking of the user: its own, low rate.
        throttle_classes=[UserRateThrottle, ScopedRateThrottle],
        throttle_scope="privacy_export",
    )
    def export(self, request):
        data = ExportSerializer(user_export(user=request.user), context={"request": request}).data
        filename = f"sessions-marketplace-export-{request.user.pk}.json"
        return Response(data, headers={"Content-Disposition": f'attachment; filename="{filename}"'})

    @swagger_auto_schema(
        methods=["put", "patch"],
        operation_summary="Edit my profile",
        operation_description=(
            "Only `first_name`, `last_name`, `bio` and `timezone` can change (PUT: the three "
            "text fields, `timezone` optional; PATCH: any). `timezone` is an IANA name "
            "(`Europe/Paris`); an unknown one is a 400 (`errors.timezone`) and changes nothing. "
            "Sending `role`, `email`, `username`, `oauth_*`, `is_staff` or another protected "
            "field is a 400 and changes nothing; a role changes via become_creator."
        ),
        request_body=UserProfileUpdateSerializer,
        responses={200: UserMeSerializer},
    )
    @action(detail=False, methods=["put", "patch"])
    def update_profile(self, request):
        data = UserProfileUpdateSerializer(data=request.data, partial=request.method == "PATCH")
        data.is_valid(raise_exception=True)
        user = user_update_profile(user=request.user, **data.validated_data)
        return Response(UserMeSerializer(user, context={"request": request}).data)

    @swagger_auto_schema(
        operation_summary="Become a creator",
        operation_description="Idempotent: a creator calling it again gets 200 and no change.",
        request_body=no_body,
        responses={200: UserMeSerializer},
    )
    @action(detail=False, methods=["post"])
    def become_creator(self, request):
        user = user_become_creator(user=request.user)
        return Response(UserMeSerializer(user, context={"request": request}).data)

    @swagger_auto_schema(
        operation_summary="Replace my calendar feed's secret URL",
        operation_description=(
            "A new `calendar_feed_url`; the old one answers 404 from now on (a leaked or shared "
            "URL is revoked this way). Calendar apps subscribed to the old URL must subscribe "
            "to the new one."
        ),
        request_body=no_body,
        responses={200: CalendarFeedUrlSerializer},
    )
    @action(detail=False, methods=["post"], url_path="calendar_token/rotate")
    def rotate_calendar_token(self, request):
        user = user_calendar_token_rotate(user=request.user)
        url = request.build_absolute_uri(calendar_feed_path(user))
        return Response(CalendarFeedUrlSerializer({"calendar_feed_url": url}).data)
