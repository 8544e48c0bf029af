"""JSON error pages for /api/; the rest of the site keeps Django's defaults."""

from django.core.exceptions import BadRequest, PermissionDenied
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import Resolver404, resolve
from django.views.csrf import csrf_failure as html_csrf_failure
from django.views.decorators.csrf import csrf_exempt
from django.views.defaults import bad_request as html_bad_request
from django.views.defaults import page_not_found, permission_denied
from django.views.defaults import server_error as html_server_error

from backend.errors import ErrorCode, error_body
from backend.exceptions import django_refusal


def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if request.path.startswith("/api/"):
        return JsonResponse(error_body(ErrorCode.NOT_FOUND, "Not found."), status=404)
    return page_not_found(request, exception)


def bad_request(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """Django's 400 for what it refuses before any view runs (a bad Host, a body it will not
    read); it must not call request.get_host(), which raised in the first place."""
    if request.path.startswith("/api/"):
        refusal = django_refusal(exception) if exception is not None else None
        status_code, body = refusal or (400, error_body(ErrorCode.BAD_REQUEST, "Bad request."))
        return JsonResponse(body, status=status_code)
    return html_bad_request(request, exception or BadRequest())


def forbidden(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if request.path.startswith("/api/"):
        return JsonResponse(
            error_body(ErrorCode.PERMISSION_DENIED, "You may not do this."), status=403
        )
    return permission_denied(request, exception or PermissionDenied())


def server_error(request: HttpRequest) -> HttpResponse:
    if request.path.startswith("/api/"):
        return JsonResponse(
            error_body(ErrorCode.SERVER_ERROR, "Internal server error."), status=500
        )
    return html_server_error(request)


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """The API authenticates with Bearer tokens, not cookies; a CSRF failure can only come
    from a cookie-authenticated admin session. Under /api/ it is still JSON."""
    if request.path.startswith("/api/"):
        return JsonResponse(error_body(ErrorCode.CSRF_FAILED, "CSRF check failed."), status=403)
    return html_csrf_failure(request, reason)


API_NOT_FOUND = "api-not-found"


def _with_trailing_slash(request: HttpRequest) -> str | None:
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
def api_not_found(request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
    """Catch-all for unknown /api/ URLs, so they are JSON even with DEBUG on."""
    suggestion = _with_trailing_slash(request)
    if suggestion is not None:
        detail = f"Not found. API paths end with a slash: {request.method} {suggestion}"
        return JsonResponse(error_body(ErrorCode.NOT_FOUND, detail), status=404)
    return JsonResponse(error_body(ErrorCode.NOT_FOUND, "Not found."), status=404)
