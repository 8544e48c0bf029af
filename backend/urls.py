from django.urls import path, re_path
from rest_framework.routers import DefaultRouter

from backend.views import auth, dashboards, errors, files, health, index, users
from backend.views import payments as payment_views
from backend.views import payouts as payout_views
from backend.views.bookings import BookingViewSet, booking_calendar_view
from backend.views.calendar import CalendarFeedView
from backend.views.catalog import SessionViewSet
from backend.views.creators import CreatorViewSet
from backend.views.reviews import BookingReviewView, ReviewViewSet, SessionReviewsView
from backend.views.series import SessionSeriesCreateView, SessionSeriesDetailView
from backend.views.waitlist import MyWaitlistView, SessionWaitlistView
from backend.views.webhooks import WebhookViewSet

router = DefaultRouter(trailing_slash=True)
router.include_root_view = False
# No `.json` format suffixes: actions do not take a `format` argument (they were a 500), and
# JSON is the only format. `me.json` falls through to the JSON 404 below.
router.include_format_suffixes = False
router.register("users", users.UserViewSet, basename="users")
router.register("sessions", SessionViewSet, basename="session")
router.register("bookings", BookingViewSet, basename="booking")
router.register("creators", CreatorViewSet, basename="creator")
router.register("reviews", ReviewViewSet, basename="review")
router.register("webhooks", WebhookViewSet, basename="webhook")

urlpatterns = [
    path("", index.api_index, name="api-index"),
    path("health/", health.health, name="health"),
    path("health/live/", health.live, name="health-live"),
    path("auth/token/", auth.PasswordTokenView.as_view(), name="token_obtain_pair"),
    path("auth/token/refresh/", auth.TokenRefreshView.as_view(), name="token_refresh"),
    path("auth/oauth/login/", auth.OAuthLoginView.as_view(), name="oauth_login"),
    path("auth/providers/", auth.OAuthProvidersView.as_view(), name="oauth_providers"),
    path("auth/logout/", auth.LogoutView.as_view(), name="logout"),
    path("dashboard/user/", dashboards.user_dashboard, name="dashboard-user"),
    path("dashboard/creator/", dashboards.creator_dashboard, name="dashboard-creator"),
    path(
        "payment/create-intent/",
        payment_views.PaymentCreateIntentView.as_view(),
        name="payment_create_intent",
    ),
    path("payment/confirm/", payment_views.PaymentConfirmView.as_view(), name="payment_confirm"),
    path("payment/webhook/", payment_views.PaymentWebhookView.as_view(), name="payment_webhook"),
    path(
        "payment/webhook/connect/",
        payout_views.ConnectWebhookView.as_view(),
        name="payment_webhook_connect",
    ),
    path(
        "payouts/onboarding/",
        payout_views.PayoutOnboardingView.as_view(),
        name="payouts_onboarding",
    ),
    path("payouts/account/", payout_views.PayoutAccountView.as_view(), name="payouts_account"),
    path(
        "payouts/transfers/",
        payout_views.PayoutTransferListView.as_view(),
        name="payouts_transfers",
    ),
    path("storage/upload/", files.FileUploadView.as_view(), name="storage-upload"),
    path("storage/delete/", files.FileDeleteView.as_view(), name="storage-delete"),
    # Before the router: `sessions/series/` is not a session (its {id} only matches digits, but
    # keep it explicit). Ids past 18 digits cannot exist: the JSON 404 below answers them.
    path("sessions/series/", SessionSeriesCreateView.as_view(), name="session-series"),
    re_path(
        r"^sessions/series/(?P<pk>[0-9]{1,18})/$",
        SessionSeriesDetailView.as_view(),
        name="session-series-detail",
    ),
    re_path(
        r"^bookings/(?P<pk>[0-9]+)/calendar\.ics$",
        booking_calendar_view,
        name="booking-calendar",
    ),
    # The feed's token is secrets.token_urlsafe(32); anything else falls through to the 404.
    re_path(
        r"^calendar/(?P<calendar_token>[A-Za-z0-9_-]{20,100})\.ics$",
        CalendarFeedView.as_view(),
        name="calendar-feed",
    ),
    path("bookings/<int:pk>/review/", BookingReviewView.as_view(), name="booking-review"),
    path("sessions/<int:pk>/reviews/", SessionReviewsView.as_view(), name="session-reviews"),
    path("sessions/<int:pk>/waitlist/", SessionWaitlistView.as_view(), name="session-waitlist"),
    path("waitlist/", MyWaitlistView.as_view(), name="waitlist"),
    *router.urls,
    # Last: anything else under /api/ is a JSON 404.
    re_path(r"^.*$", errors.api_not_found, name=errors.API_NOT_FOUND),
]
