"""JSON error pages for /api/; the rest of the site keeps Django's defaults."""

from django.http import JsonResponse
from django.urls import Resolver404, resolve
from django.views.csrf import csrf_failure as html_csrf_failure
from django.views.decorators.csrf import csrf_exempt
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


def csrf_failure(request, reason=""):
    """The API authenticates with Bearer tokens, not cookies; a CSRF failure can only come
    from a cookie-authenticated admin session. Under /api/ it is still JSON."""
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": "CSRF check failed.", "code": "csrf_failed"}, status=403)
    return html_csrf_failure(request, reason)


API_NOT_FOUND = "api-not-found"


def _with_trailing_slash(request) -> str | None:
    """The URL the client probably meant, when only the trailing slash is missing.

    APPEND_SLASH cannot help: the catch-all matches, and a redirect would turn a POST into a
    GET anyway. So the 404 names the right path instead."""
    if request.path.endswith("/"):
        return None
    candidate = request.path + "/"
    try:
        match = resolve(candidate)
    except Resolver404:
        return None
    if match.url_name == API_NOT_FOUND:
        return None
    query = request.META.get("QUERY_STRING", "")
    return candidate + (f"?{query}" if query else "")


@csrf_exempt
def api_not_found(request, *args, **kwargs):
    """Catch-all for unknown /api/ URLs, so they are JSON even with DEBUG on."""
    suggestion = _with_trailing_slash(request)
    if suggestion is not None:
        detail = f"Not found. API paths end with a slash: {request.method} {suggestion}"
        return JsonResponse({"detail": detail, "code": "not_found"}, status=404)
    return JsonResponse({"detail": "Not found.", "code": "not_found"}, status=404)
