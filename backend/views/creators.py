"""`/api/creators/`: public creator profiles and their reviews (thin views over selectors)."""

from typing import Any

from django_filters import utils as filter_utils
from drf_yasg.utils import swagger_auto_schema
from rest_framework import viewsets
from rest_framework.decorators import action
from rest_framework.permissions import AllowAny
from rest_framework.response import Response

from backend.filters import CreatorFilter
from backend.models import User
from backend.schema import PAGE_PARAMS, filterset_parameters
from backend.selectors import creators as selectors
from backend.selectors.reviews import review_list_for_creator
from backend.serializers.creators import CreatorProfilePageSerializer, CreatorProfileSerializer
from backend.serializers.reviews import ReviewPageSerializer, ReviewSerializer
from backend.views.reviews import error_response

CREATOR_LIST_PARAMS = [*filterset_parameters(CreatorFilter), *PAGE_PARAMS]


class CreatorViewSet(viewsets.GenericViewSet):
    """Creators with at least one published session; anyone may read."""

    permission_classes = [AllowAny]
    queryset = User.objects.none()
    serializer_class = CreatorProfileSerializer
    lookup_field = "username"
    lookup_value_regex = r"[\w.@+-]+"
    # The list filters by hand (CreatorFilter), so that the reviews action has none.
    filter_backends: list = []

    def _profiles(self, creators: list[User]) -> Any:
        categories = selectors.creator_categories(creator_ids=[creator.pk for creator in creators])
        context = {**self.get_serializer_context(), "categories": categories}
        return CreatorProfileSerializer(creators, many=True, context=context).data

    @swagger_auto_schema(
        operation_summary="Creators (public)",
        operation_description=(
            "Everyone with a published session: profile, categories of their published "
            "sessions, `rating {average, count}` over visible reviews, sessions held (ended) "
            "and upcoming."
        ),
        manual_parameters=CREATOR_LIST_PARAMS,
        responses={200: CreatorProfilePageSerializer},
    )
    def list(self, request):
        filterset = CreatorFilter(
            data=request.query_params, queryset=selectors.creator_list(), request=request
        )
        if not filterset.is_valid():
            raise filter_utils.translate_validation(filterset.errors)
        page = self.paginate_queryset(filterset.qs)
        return self.get_paginated_response(self._profiles(list(page or [])))

    @swagger_auto_schema(
        operation_summary="One creator's public profile",
        operation_description=(
            "The same shape as a list entry. 404 `creator_not_found` for anyone without a "
            "published session (or an inactive account)."
        ),
        responses={200: CreatorProfileSerializer, 404: error_response("Not a public creator.")},
    )
    def retrieve(self, request, username=None):
        creator = selectors.creator_get(username=str(username))
        return Response(self._profiles([creator])[0])

    @swagger_auto_schema(
        operation_summary="A creator's reviews (public)",
        operation_description=(
            "Visible reviews of all their sessions, newest first (hidden ones are left out). "
            "404 `creator_not_found` as for the profile."
        ),
        manual_parameters=PAGE_PARAMS,
        responses={200: ReviewPageSerializer, 404: error_response("Not a public creator.")},
    )
    @action(detail=True, methods=["get"])
    def reviews(self, request, username=None):
        creator = selectors.creator_get(username=str(username))
        page = self.paginate_queryset(review_list_for_creator(creator=creator))
        return self.get_paginated_response(ReviewSerializer(page, many=True).data)
