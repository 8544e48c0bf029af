from drf_yasg.utils import swagger_auto_schema
from rest_framework.decorators import api_view, permission_classes
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response

from backend.permissions import IsCreator
from backend.selectors.dashboards import dashboard_for_creator, dashboard_for_user
from backend.serializers.dashboards import CreatorDashboardSerializer, UserDashboardSerializer


@swagger_auto_schema(
    method="get",
    operation_summary="Your dashboard: profile, booking counts, spend, next and last bookings",
    responses={200: UserDashboardSerializer},
    tags=["dashboard"],
)
@api_view(["GET"])
@permission_classes([IsAuthenticated])
def user_dashboard(request):
    return Response(UserDashboardSerializer(dashboard_for_user(user=request.user)).data)


@swagger_auto_schema(
    method="get",
    operation_summary="Creator dashboard: sessions, attendees, revenue, fill rate",
    operation_description="Creators only: 401 without a token, 403 for a user account.",
    responses={200: CreatorDashboardSerializer},
    tags=["dashboard"],
)
@api_view(["GET"])
@permission_classes([IsAuthenticated, IsCreator])
def creator_dashboard(request):
    return Response(CreatorDashboardSerializer(dashboard_for_creator(creator=request.user)).data)
