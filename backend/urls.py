from django.urls import path, re_path
from rest_framework.routers import DefaultRouter
from rest_framework_simplejwt.views import TokenObtainPairView, TokenRefreshView

from backend.views import errors, health
from backend.views.bookings import BookingViewSet, booking_calendar_view

router = DefaultRouter(trailing_slash=True)
router.include_root_view = False
router.register("bookings", BookingViewSet, basename="booking")

urlpatterns = [
    path("health/", health.health, name="health"),
    path("auth/token/", TokenObtainPairView.as_view(), name="token_obtain_pair"),
    path("auth/token/refresh/", TokenRefreshView.as_view(), name="token_refresh"),
    re_path(
        r"^bookings/(?P<pk>[0-9]+)/calendar\.ics$",
        booking_calendar_view,
        name="booking-calendar",
    ),
    *router.urls,
    # Last: anything else under /api/ is a JSON 404.
    re_path(r"^.*$", errors.api_not_found),
]
