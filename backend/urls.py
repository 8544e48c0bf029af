from django.urls import path, re_path
from rest_framework.routers import DefaultRouter

from backend.views import auth, errors, health, users

router = DefaultRouter(trailing_slash=True)
router.include_root_view = False
router.register("users", users.UserViewSet, basename="users")

urlpatterns = [
    path("health/", health.health, name="health"),
    path("auth/token/", auth.PasswordTokenView.as_view(), name="token_obtain_pair"),
    path("auth/token/refresh/", auth.TokenRefreshView.as_view(), name="token_refresh"),
    path("auth/oauth/login/", auth.OAuthLoginView.as_view(), name="oauth_login"),
    path("auth/logout/", auth.LogoutView.as_view(), name="logout"),
    *router.urls,
    # Last: anything else under /api/ is a JSON 404.
    re_path(r"^.*$", errors.api_not_found),
]
