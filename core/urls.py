from django.conf import settings
from django.contrib import admin
from django.urls import include, path, re_path
from django.views.generic import RedirectView
from django.views.static import serve
from drf_yasg import openapi
from drf_yasg.views import get_schema_view
from rest_framework import permissions

api_info = openapi.Info(
    title="Sessions Marketplace API",
    default_version="v1",
    description=(
        "Browse and book sessions, pay with Stripe, manage your own sessions as a creator. "
        "Authenticate with `Authorization: Bearer <access JWT>`."
    ),
)

schema_view = get_schema_view(
    api_info,
    public=True,
    permission_classes=[permissions.AllowAny],
    authentication_classes=[],
)

urlpatterns = [
    # A newcomer opening http://localhost:8000/ lands on the API's index.
    path("", RedirectView.as_view(url="/api/", permanent=False), name="root"),
    path("admin/", admin.site.urls),
    path("api/", include("backend.urls")),
    re_path(
        r"^swagger\.(?P<format>json|yaml)$",
        schema_view.without_ui(cache_timeout=0),
        name="schema-json",
    ),
    path("swagger/", schema_view.with_ui("swagger", cache_timeout=0), name="schema-swagger-ui"),
    path("redoc/", schema_view.with_ui("redoc", cache_timeout=0), name="schema-redoc"),
]

if settings.DEBUG and not settings.AWS_STORAGE_BUCKET_NAME:
    # Local media in development; in production nginx serves /media/ from the same folder.
    urlpatterns += [
        re_path(r"^media/(?P<path>.*)$", serve, {"document_root": settings.MEDIA_ROOT}),
    ]

handler400 = "backend.views.errors.bad_request"
handler403 = "backend.views.errors.forbidden"
handler404 = "backend.views.errors.not_found"
handler500 = "backend.views.errors.server_error"
