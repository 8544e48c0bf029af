"""Reviews API (CONTRACT.md "Creator profiles and reviews"): thin views over
services/selectors/reviews.

Reading is public; writing needs a signed-in user, and each write calls one service. Writing a
review and reporting one have their own throttle scopes (`reviews`, `review_reports`).
"""

from drf_yasg import openapi
from drf_yasg.utils import swagger_auto_schema
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.generics import GenericAPIView
from rest_framework.permissions import AllowAny
from rest_framework.response import Response

from backend.models import Booking, Review, Session
from backend.schema import PAGE_PARAMS
from backend.selectors import reviews as selectors
from backend.serializers.reviews import (
    ReviewCreateSerializer,
    ReviewPageSerializer,
    ReviewReplySerializer,
    ReviewReportCreateSerializer,
    ReviewReportSerializer,
    ReviewSerializer,
    ReviewUpdateSerializer,
)
from backend.services import reviews as services
from backend.throttling import AnonAndUserRateThrottle, ScopedRateThrottle, UserRateThrottle

PLAIN_TEXT = "Plain text, returned exactly as sent; never interpreted as HTML."


def error_response(description: str) -> openapi.Response:
    return openapi.Response(
        description,
        openapi.Schema(
            type=openapi.TYPE_OBJECT,
            properties={
                "detail": openapi.Schema(type=openapi.TYPE_STRING),
                "code": openapi.Schema(type=openapi.TYPE_STRING),
            },
        ),
    )


class BookingReviewView(GenericAPIView):
    """`POST bookings/{id}/review/`: the booking's user reviews the session they attended."""

    serializer_class = ReviewCreateSerializer
    # Only tells drf-yasg that `{id}` is a booking's integer id; the service reads the booking.
    queryset = Booking.objects.none()
    throttle_classes = [UserRateThrottle, ScopedRateThrottle]
    throttle_scope = "reviews"

    @swagger_auto_schema(
        operation_id="bookings_review",
        operation_summary="Review a session you attended (the booking's user)",
        operation_description=(
            "For a confirmed booking of a session that has ended, within "
            f"{services.REVIEW_WINDOW_DAYS} days of its end, once per booking. `rating` 1-5, "
            f"`comment` optional (at most 2000 characters). {PLAIN_TEXT} "
            "Codes: 404 `not_found` (not your booking), 403 `not_booking_user` (you are the "
            "session's creator), 409 `booking_not_confirmed`, `session_not_ended`, "
            "`review_window_closed`, `already_reviewed`. Throttled (scope `reviews`)."
        ),
        request_body=ReviewCreateSerializer,
        responses={
            201: ReviewSerializer,
            403: error_response("You are the session's creator, not the attendee."),
            404: error_response("Unknown booking, or not yours."),
            409: error_response("Not confirmed, not ended, window closed, or already reviewed."),
        },
    )
    def post(self, request, pk: str):
        payload = ReviewCreateSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        review = services.review_create(
            user=request.user,
            booking_id=int(pk),
            rating=payload.validated_data["rating"],
            comment=payload.validated_data["comment"],
        )
        return Response(ReviewSerializer(review).data, status=status.HTTP_201_CREATED)


class SessionReviewsView(GenericAPIView):
    """`GET sessions/{id}/reviews/`: a session's visible reviews, public."""

    permission_classes = [AllowAny]
    throttle_classes = [AnonAndUserRateThrottle]
    serializer_class = ReviewSerializer
    # Only tells drf-yasg that `{id}` is a session's integer id.
    queryset = Session.objects.none()

    @swagger_auto_schema(
        operation_id="sessions_reviews",
        operation_summary="A session's reviews (public)",
        operation_description="Visible reviews, newest first. Hidden ones are left out.",
        manual_parameters=PAGE_PARAMS,
        responses={200: ReviewPageSerializer, 404: error_response("Unknown session, or a draft.")},
    )
    def get(self, request, pk: str):
        reviews = selectors.review_list_for_session(session_id=int(pk))
        page = self.paginate_queryset(reviews)
        return self.get_paginated_response(ReviewSerializer(page, many=True).data)


class ReviewViewSet(viewsets.GenericViewSet):
    """`reviews/{id}/`: read one (public), edit (author), reply (creator), report (anyone)."""

    # Only tells drf-yasg the model (integer ids); the endpoints go through services/selectors.
    queryset = Review.objects.none()
    serializer_class = ReviewSerializer
    lookup_value_regex = r"[0-9]+"
    # Set per action (report); ScopedRateThrottle ignores a view without a scope.
    throttle_scope: str | None = None

    def get_permissions(self):
        if self.action == "retrieve":
            return [AllowAny()]
        return super().get_permissions()

    @swagger_auto_schema(
        operation_summary="One review (public)",
        operation_description="Hidden reviews are 404 (`review_not_found`).",
        responses={200: ReviewSerializer, 404: error_response("Unknown or hidden review.")},
    )
    def retrieve(self, request, pk=None):
        return Response(ReviewSerializer(selectors.review_get_visible(review_id=int(pk))).data)

    @swagger_auto_schema(
        operation_summary="Edit your review (its author)",
        operation_description=(
            f"Change `rating` and/or `comment` within {services.REVIEW_EDIT_WINDOW_DAYS} days "
            f"of writing it. {PLAIN_TEXT} Codes: 403 `not_review_author`, 404 "
            "`review_not_found`, 409 `edit_window_closed`."
        ),
        request_body=ReviewUpdateSerializer,
        responses={
            200: ReviewSerializer,
            403: error_response("Not your review."),
            404: error_response("Unknown or hidden review."),
            409: error_response("The edit window has closed."),
        },
    )
    def partial_update(self, request, pk=None):
        payload = ReviewUpdateSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        review = services.review_update(
            review_id=int(pk), actor=request.user, **payload.validated_data
        )
        return Response(ReviewSerializer(selectors.review_get_visible(review_id=review.pk)).data)

    @swagger_auto_schema(
        operation_summary="Reply to a review (the session's creator, once)",
        operation_description=(
            f"`text`: at most 2000 characters. {PLAIN_TEXT} Codes: 403 "
            "`not_session_creator`, 404 `review_not_found`, 409 `already_replied`."
        ),
        request_body=ReviewReplySerializer,
        responses={
            200: ReviewSerializer,
            403: error_response("Not the session's creator."),
            404: error_response("Unknown or hidden review."),
            409: error_response("Already replied."),
        },
    )
    @action(detail=True, methods=["post"])
    def reply(self, request, pk=None):
        payload = ReviewReplySerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        review = services.review_reply(
            review_id=int(pk), actor=request.user, text=payload.validated_data["text"]
        )
        return Response(ReviewSerializer(selectors.review_get_visible(review_id=review.pk)).data)

    @swagger_auto_schema(
        operation_summary="Report a review to staff (any signed-in user, once per review)",
        operation_description=(
            "`reason`: at most 1000 characters. Staff look at reports in the admin and may "
            "hide the review. Codes: 404 `review_not_found`, 409 `already_reported`. "
            "Throttled (scope `review_reports`)."
        ),
        request_body=ReviewReportCreateSerializer,
        responses={
            201: ReviewReportSerializer,
            404: error_response("Unknown or hidden review."),
            409: error_response("You already reported it."),
        },
    )
    @action(
        detail=True,
        methods=["post"],
        throttle_classes=[UserRateThrottle, ScopedRateThrottle],
        throttle_scope="review_reports",
    )
    def report(self, request, pk=None):
        payload = ReviewReportCreateSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        report = services.review_report(
            review_id=int(pk), reporter=request.user, reason=payload.validated_data["reason"]
        )
        return Response(ReviewReportSerializer(report).data, status=status.HTTP_201_CREATED)
