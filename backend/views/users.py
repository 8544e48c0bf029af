"""The signed-in user's own account: profile, profile edits, becoming a creator."""

from drf_yasg.utils import no_body, swagger_auto_schema
from rest_framework import viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from backend.serializers.users import UserProfileSerializer, UserProfileUpdateSerializer
from backend.services.users import user_become_creator, user_update_profile


class UserViewSet(viewsets.GenericViewSet):
    serializer_class = UserProfileSerializer
    # Only the caller's own account is reachable here; no list, no lookup by id.
    pagination_class = None

    def get_queryset(self):
        return type(self.request.user).objects.filter(pk=self.request.user.pk)

    def get_object(self):
        # The only object here is the caller (DRF's OPTIONS metadata asks for it too).
        return self.request.user

    @swagger_auto_schema(
        operation_summary="My profile",
        operation_description=(
            "The signed-in account's profile. Change names and bio with `update_profile/`, the "
            "avatar by uploading an image (`POST /api/storage/upload/`, `purpose=avatar`), the "
            "role with `become_creator/`."
        ),
        responses={200: UserProfileSerializer},
    )
    @action(detail=False, methods=["get"])
    def me(self, request):
        return Response(UserProfileSerializer(request.user, context={"request": request}).data)

    @swagger_auto_schema(
        methods=["put", "patch"],
        operation_summary="Edit my profile",
        operation_description=(
            "Only `first_name`, `last_name` and `bio` can change (PUT: all three, PATCH: any). "
            "Sending `role`, `email`, `username`, `oauth_*`, `is_staff` or another protected "
            "field is a 400 and changes nothing; a role changes via become_creator."
        ),
        request_body=UserProfileUpdateSerializer,
        responses={200: UserProfileSerializer},
    )
    @action(detail=False, methods=["put", "patch"])
    def update_profile(self, request):
        data = UserProfileUpdateSerializer(data=request.data, partial=request.method == "PATCH")
        data.is_valid(raise_exception=True)
        user = user_update_profile(user=request.user, **data.validated_data)
        return Response(UserProfileSerializer(user, context={"request": request}).data)

    @swagger_auto_schema(
        operation_summary="Become a creator",
        operation_description="Idempotent: a creator calling it again gets 200 and no change.",
        request_body=no_body,
        responses={200: UserProfileSerializer},
    )
    @action(detail=False, methods=["post"])
    def become_creator(self, request):
        user = user_become_creator(user=request.user)
        return Response(UserProfileSerializer(user, context={"request": request}).data)
