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
    operation_description=(
        "Any signed-in account. `stats`: upcoming and past active bookings, cancelled ones, and "
        "`total_spent` per currency (paid minus refunded). `upcoming_bookings`: the next 5; "
        "`past_bookings`: the last 5. Computed in a fixed number of queries."
    ),
    operation_id="dashboard_user",
    responses={200: UserDashboardSerializer, 401: "No or invalid token."},
    tags=["dashboard"],
)
@api_view(["GET"])
@permission_classes([IsAuthenticated])
def user_dashboard(request):
    return Response(
        UserDashboardSerializer(
            dashboard_for_user(user=request.user), context={"request": request}
        ).data
    )


@swagger_auto_schema(
    method="get",
    operation_summary="Creator dashboard: sessions, attendees, revenue, fill rate",
    operation_description="Creators only: 401 without a token, 403 for a user account.",
    operation_id="dashboard_creator",
    responses={
        200: CreatorDashboardSerializer,
        401: "No or invalid token.",
        403: "Signed in, but not a creator.",
    },
    tags=["dashboard"],
)
@api_view(["GET"])
@permission_classes([IsAuthenticated, IsCreator])
def creator_dashboard(request):
    return Response(
        CreatorDashboardSerializer(
            dashboard_for_creator(creator=request.user), context={"request": request}
        ).data
    )
