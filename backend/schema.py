"""Swagger generation: every operation documents the error responses it can really give.

CONTRACT.md fixes one error shape for the whole API, so instead of repeating it on each view
this inspector adds it to every operation, by method. Views still declare their success
responses (and any special error) with `swagger_auto_schema`.
"""

import django_filters
from django import forms
from django_filters.rest_framework import DjangoFilterBackend
from drf_yasg import openapi
from drf_yasg.inspectors import FieldInspector, SwaggerAutoSchema

from backend.filters import BOOLEAN_CHOICES, AwareDateTimeFilter

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
