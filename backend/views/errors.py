"""JSON error pages for /api/; the rest of the site keeps Django's defaults."""

from django.http import JsonResponse
from django.views.defaults import page_not_found
from django.views.defaults import server_error as html_server_error


def not_found(request, exception=None):
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": "Not found.", "code": "not_found"}, status=404)
    return page_not_found(request, exception)


def server_error(request):
    if request.path.startswith("/api/"):
        return JsonResponse(
            {"detail": "Internal server error.", "code": "server_error"}, status=500
        )
    return html_server_error(request)


def api_not_found(request, *args, **kwargs):
    """Catch-all for unknown /api/ URLs, so they are JSON even with DEBUG on."""
    return JsonResponse({"detail": "Not found.", "code": "not_found"}, status=404)
