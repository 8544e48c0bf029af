"""Swagger generation: every operation documents the error responses it can really give.

Per operation and status, the error body schema (`code`, `detail`, and `errors` on validation
failures) with `code` an enum of the codes that operation can answer (backend/error_docs.py
derives them from the handler's code), each listed with its meaning in the description.
Views still declare their success responses (and may word an error's description) with
`swagger_auto_schema`; a declared error response with a schema of its own (health's 503) is kept.
"""

import django_filters
from django import forms
from django_filters.rest_framework import DjangoFilterBackend
from drf_yasg import openapi
from drf_yasg.inspectors import FieldInspector, SwaggerAutoSchema

from backend.error_docs import operation_codes
from backend.errors import ErrorCode
from backend.filters import BOOLEAN_CHOICES, AwareDateTimeFilter

# `?page=` and `?page_size=` of every paginated list (backend/pagination.py), for the views
# that drf-yasg does not see as paginated lists (actions, hand-written list methods).
PAGE_PARAMS = [
    openapi.Parameter(
        "page",
        openapi.IN_QUERY,
        description="A page number within the paginated result set (from 1).",
        type=openapi.TYPE_INTEGER,
        minimum=1,
    ),
    openapi.Parameter(
        "page_size",
        openapi.IN_QUERY,
        description="Number of results per page (at most 100).",
        type=openapi.TYPE_INTEGER,
        minimum=1,
        maximum=100,
    ),
]

ERROR_DESCRIPTIONS = {
    400: "Invalid input.",
    401: "Missing, invalid, expired or revoked access token.",
    403: "Authenticated, but not allowed to do this.",
    404: "Unknown, or not yours to see.",
    409: "State conflict.",
    413: "The request body is larger than the limit.",
    415: "The Content-Type is not one this operation reads.",
    422: "The Idempotency-Key was already used for a different request.",
    429: "Too many requests; retry after the time in the Retry-After header.",
    502: "An external service (Stripe, an OAuth provider) failed or timed out.",
    503: "Temporarily unavailable (retry after Retry-After), or an integration is not configured.",
}


def error_schema(codes: list[ErrorCode] | None) -> openapi.Schema:
    """The error body; `code` an enum of `codes` (None: not known, any registered code)."""
    enum = [code.value for code in codes] if codes is not None else None
    properties = {
        "code": openapi.Schema(type=openapi.TYPE_STRING, enum=enum),
        "detail": openapi.Schema(type=openapi.TYPE_STRING, description="A sentence for people."),
    }
    if codes is None or ErrorCode.INVALID in codes:
        properties["errors"] = openapi.Schema(
            type=openapi.TYPE_OBJECT,
            description=(
                "With `invalid`: `{field: [message, ...]}`; errors of the whole body under "
                "`non_field_errors`, of nested fields nested the same way."
            ),
            additional_properties=True,
        )
    return openapi.Schema(
        title="Error",
        type=openapi.TYPE_OBJECT,
        properties=properties,
        required=["code", "detail"],
    )


def error_description(lead: str, codes: list[ErrorCode]) -> str:
    lines = [f"- `{code.value}`: {code.meaning}" for code in codes]
    return "\n".join([lead, "", *lines])


def is_error_response(response: object) -> bool:
    """A response a view declared as a plain description or the old `{detail, code}` schema,
    as opposed to one with a body of its own (health's `{status, database}`)."""
    schema = getattr(response, "schema", None)
    if schema is None:
        return True
    properties = getattr(schema, "properties", None) or {}
    return not properties or set(properties) <= {"code", "detail", "errors"}


def filter_parameter(name: str, query_filter: django_filters.Filter) -> openapi.Parameter:
    """A django-filter filter as a typed Swagger query parameter.

    django-filter no longer describes its filters to drf-yasg, which then calls every one an
    untyped string; a generated client needs numbers, booleans, date-times and enums. The
    description is the filter's `help_text`.
    """
    extra = query_filter.extra
    attrs: dict = {"description": str(extra.get("help_text") or query_filter.label or "")}
    if isinstance(query_filter, django_filters.OrderingFilter):
        fields = list(query_filter.param_map)
        attrs.update(type=openapi.TYPE_STRING, enum=[p for f in fields for p in (f, f"-{f}")])
    elif isinstance(query_filter, AwareDateTimeFilter):
        attrs.update(type=openapi.TYPE_STRING, format=openapi.FORMAT_DATETIME)
    elif isinstance(query_filter, django_filters.ChoiceFilter):
        values = [str(value) for value, _label in extra.get("choices", [])]
        if values == [value for value, _label in BOOLEAN_CHOICES]:
            attrs.update(type=openapi.TYPE_BOOLEAN)
        else:
            attrs.update(type=openapi.TYPE_STRING, enum=values)
    elif isinstance(query_filter, django_filters.NumberFilter):
        # Django's DecimalField and FloatField are IntegerField subclasses.
        fractional = issubclass(query_filter.field_class, forms.DecimalField | forms.FloatField)
        integer = issubclass(query_filter.field_class, forms.IntegerField) and not fractional
        attrs.update(type=openapi.TYPE_INTEGER if integer else openapi.TYPE_NUMBER)
        for bound, key in (("minimum", "min_value"), ("maximum", "max_value")):
            if extra.get(key) is not None:
                attrs[bound] = extra[key]
    else:
        attrs.update(type=openapi.TYPE_STRING)
        if extra.get("max_length"):
            attrs["max_length"] = extra["max_length"]
    return openapi.Parameter(name, openapi.IN_QUERY, **attrs)


def filterset_parameters(filterset_class: type[django_filters.FilterSet]) -> list:
    """Every filter of a FilterSet as typed, described query parameters (for list views, and
    for `@action` lists whose filters drf-yasg does not look at)."""
    return [
        filter_parameter(name, query_filter)
        for name, query_filter in filterset_class.base_filters.items()
    ]


class ApiAutoSchema(SwaggerAutoSchema):
    def get_filter_parameters(self):
        filterset_class = getattr(self.view, "filterset_class", None)
        backends = getattr(self.view, "filter_backends", None) or []
        if filterset_class is not None and DjangoFilterBackend in backends:
            return filterset_parameters(filterset_class) if self.should_filter() else []
        return super().get_filter_parameters()

    def get_produces(self):
        # Errors are JSON on every endpoint, including the ones whose success is not
        # (the .ics calendar).
        produces = list(super().get_produces())
        if "application/json" not in produces:
            produces.append("application/json")
        return produces

    def handler(self):
        action = getattr(self.view, "action", None)
        return getattr(self.view, action or self.method.lower(), None)

    def get_operation(self, operation_keys=None):
        operation = super().get_operation(operation_keys)
        parameters = operation.get("parameters") or []
        by_status = operation_codes(
            view=self.view,
            handler=self.handler(),
            method=self.method,
            path_parameters="{" in self.path,
            query_parameters=[p["name"] for p in parameters if p.get("in") == "query"],
            has_body=any(p.get("in") in ("body", "formData") for p in parameters),
        )
        responses = operation["responses"]
        for status, codes in by_status.items():
            declared = responses.get(str(status))
            if declared is not None and not is_error_response(declared):
                continue
            lead = getattr(declared, "description", None)
            if not lead or lead == "Error":  # a view's generic wording: say what the status means
                lead = ERROR_DESCRIPTIONS.get(status, "Error.")
            responses[str(status)] = openapi.Response(
                error_description(lead, codes), error_schema(codes)
            )
        for status, declared in list(responses.items()):
            # An error a view declared that no code was found for: the body shape, still.
            if status >= "400" and int(status) not in by_status and is_error_response(declared):
                responses[status] = openapi.Response(declared.description, error_schema(None))
        return operation


class ReadOnlyFieldInspector(FieldInspector):
    """Read-only strings carry no minLength.

    DRF drops `allow_blank` from read-only model fields, so drf-yasg would claim that e.g.
    a blank `bio` in a response is invalid. Responses may contain any stored value.
    """

    def process_result(self, result, method_name, obj, **kwargs):
        if isinstance(result, openapi.Schema) and getattr(obj, "read_only", False):
            result.pop("minLength", None)
        return result
