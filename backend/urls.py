from django.urls import path, re_path
from rest_framework.routers import DefaultRouter
from rest_framework_simplejwt.views import TokenObtainPairView, TokenRefreshView

from backend.views import dashboards, errors, health

router = DefaultRouter(trailing_slash=True)
router.include_root_view = False

urlpatterns = [
    path("health/", health.health, name="health"),
    path("auth/token/", TokenObtainPairView.as_view(), name="token_obtain_pair"),
    path("auth/token/refresh/", TokenRefreshView.as_view(), name="token_refresh"),
    path("dashboard/user/", dashboards.user_dashboard, name="dashboard-user"),
    path("dashboard/creator/", dashboards.creator_dashboard, name="dashboard-creator"),
    *router.urls,
    # Last: anything else under /api/ is a JSON 404.
    re_path(r"^.*$", errors.api_not_found),
]
