"""The production URLs plus `/bench/baseline/catalog/` (the harness's yardstick)."""

from django.urls import include, path

from bench.views import baseline_catalog, baseline_detail

urlpatterns = [
    path("bench/baseline/catalog/", baseline_catalog),
    path("bench/baseline/sessions/<int:session_id>/", baseline_detail),
    path("", include("core.urls")),
]
