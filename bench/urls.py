"""The production URLs plus `/bench/baseline/catalog/` (the harness's yardstick)."""

from django.urls import include, path

from bench.views import baseline_catalog

urlpatterns = [
    path("bench/baseline/catalog/", baseline_catalog),
    path("", include("core.urls")),
]
