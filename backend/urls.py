from django.urls import path, re_path
from rest_framework.routers import DefaultRouter
from rest_framework_simplejwt.views import TokenObtainPairView, TokenRefreshView

from backend.views import errors, health
from backend.views.catalog import SessionViewSet

router = DefaultRouter(trailing_slash=True)
router.include_root_view = False
router.register("sessions", SessionViewSet, basename="session")

urlpatterns = [
    path("health/", health.health, name="health"),
    path("auth/token/", TokenObtainPairView.as_view(), name="token_obtain_pair"),
    path("auth/token/refresh/", TokenRefreshView.as_view(), name="token_refresh"),
    *router.urls,
    # Last: anything else under /api/ is a JSON 404.
    re_path(r"^.*$", errors.api_not_found),
]
