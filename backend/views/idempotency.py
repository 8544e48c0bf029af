"""`@idempotent` for the POST handlers CONTRACT.md names (services/idempotency.py has the rules).

Without an `Idempotency-Key` header the handler runs as before. With one, the first request's
answer, success or refusal (any status below 500), is what every repeat gets back, with the
header `Idempotent-Replayed: true`; the handler does not run again.
"""

import functools
from collections.abc import Callable
from typing import Any, cast

from django.http import HttpResponse
from drf_yasg import openapi

from backend.errors import ErrorCode
from backend.models import User
from backend.services import idempotency

HEADER = "Idempotency-Key"
IDEMPOTENCY_CODES = frozenset(
    {
        ErrorCode.INVALID_IDEMPOTENCY_KEY,
        ErrorCode.IDEMPOTENCY_KEY_IN_USE,
        ErrorCode.IDEMPOTENCY_KEY_REUSED,
    }
)
REPLAYED_HEADER = "Idempotent-Replayed"

IDEMPOTENCY_KEY_PARAMETER = openapi.Parameter(
    HEADER,
    openapi.IN_HEADER,
    type=openapi.TYPE_STRING,
    required=False,
    description=(
        "1-255 characters, chosen by the client (a UUID). Repeating the request with the same "
        "key within 24 h replays the first answer (status and body) without acting again; the "
        "same key with a different body is 422 `idempotency_key_reused`."
    ),
)

Handler = Callable[..., Any]


def idempotent(handler: Handler) -> Handler:
    @functools.wraps(handler)
    def wrapper(view: Any, request: Any, *args: Any, **kwargs: Any) -> Any:
        key = request.headers.get(HEADER)
        if key is None:
            return handler(view, request, *args, **kwargs)
        idempotency.check_key(key)
        # The handler ran after authentication and permissions: a signed-in user.
        user = cast(User, request.user)
        fingerprint = idempotency.request_fingerprint(
            method=request.method, path=request.path, data=request.data
        )
        stored = idempotency.idempotency_begin(user=user, key=key, request_hash=fingerprint)
        if stored is not None:
            replay = HttpResponse(
                stored.body, status=stored.status, content_type=stored.content_type
            )
            replay[REPLAYED_HEADER] = "true"
            return replay
        try:
            try:
                response = handler(view, request, *args, **kwargs)
            except Exception as error:
                # A refusal (a domain error) is an answer too: stored and replayed like one.
                response = view.handle_exception(error)
            response = view.finalize_response(request, response, *args, **kwargs)
            response.render()
        except BaseException:
            idempotency.idempotency_release(user=user, key=key)
            raise
        idempotency.idempotency_finish(
            user=user,
            key=key,
            status=response.status_code,
            body=response.content,
            content_type=response.get("Content-Type", "application/json"),
        )
        return response

    # For Swagger (backend/error_docs.py): the codes the wrapper answers before the handler runs.
    wrapper.extra_error_codes = IDEMPOTENCY_CODES  # type: ignore[attr-defined]
    return wrapper
