"""Swagger generation: every operation documents the error responses it can really give.

CONTRACT.md fixes one error shape for the whole API, so instead of repeating it on each view
this inspector adds it to every operation, by method. Views still declare their success
responses (and any special error) with `swagger_auto_schema`.
"""

from drf_yasg import openapi
from drf_yasg.inspectors import FieldInspector, SwaggerAutoSchema

ERROR_SCHEMA = openapi.Schema(
    title="Error",
    type=openapi.TYPE_OBJECT,
    description=(
        "`{detail, code}` (both strings), or for validation errors `{field: [message, ...]}` "
        "(non-field errors under `non_field_errors`). A field may itself be named `code`, so "
        "`code` is not typed here."
    ),
    properties={"detail": openapi.Schema(type=openapi.TYPE_STRING)},
    additional_properties=True,
)

ERROR_DESCRIPTIONS = {
    "400": "Invalid input.",
    "401": "Missing, invalid, expired or revoked access token.",
    "403": "Authenticated, but not allowed to do this.",
    "404": "Unknown, or not yours to see.",
    "409": "State conflict: sold out, already booked, not cancellable, ...",
    "413": "The upload is larger than the limit.",
    "429": "Too many requests; retry after the time in the Retry-After header.",
    "502": "An external service (Stripe, an OAuth provider, storage) failed or timed out.",
    "503": (
        "Temporarily unavailable (database busy or restarting: retry after Retry-After), "
        "or an optional integration is not configured."
    ),
}

ALWAYS = ("400", "401", "403", "404", "429", "503")
WRITES = ("409", "502")
WRITE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}


class ApiAutoSchema(SwaggerAutoSchema):
    def error_codes(self) -> list[str]:
        codes = list(ALWAYS)
        if self.method.upper() in WRITE_METHODS:
            codes += WRITES
        if any("multipart" in media_type for media_type in self.get_consumes()):
            codes.append("413")
        return codes

    def get_produces(self):
        # Errors are JSON on every endpoint, including the ones whose success is not
        # (the .ics calendar).
        produces = list(super().get_produces())
        if "application/json" not in produces:
            produces.append("application/json")
        return produces

    def get_response_serializers(self):
        responses = super().get_response_serializers()
        for code in self.error_codes():
            responses.setdefault(code, openapi.Response(ERROR_DESCRIPTIONS[code], ERROR_SCHEMA))
        return responses


class ReadOnlyFieldInspector(FieldInspector):
    """Read-only strings carry no minLength.

    DRF drops `allow_blank` from read-only model fields, so drf-yasg would claim that e.g.
    a blank `bio` in a response is invalid. Responses may contain any stored value.
    """

    def process_result(self, result, method_name, obj, **kwargs):
        if isinstance(result, openapi.Schema) and getattr(obj, "read_only", False):
            result.pop("minLength", None)
        return result
