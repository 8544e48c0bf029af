"""A faster JSON renderer: orjson instead of the standard library's json module.

Serializers already turn decimals and datetimes into strings (COERCE_DECIMAL_TO_STRING), so
orjson sees plain data; `default` covers what may still slip through (lazy translations,
Decimal, UUID, sets).
"""

import decimal
import uuid

import orjson
from django.utils.functional import Promise
from rest_framework.renderers import JSONRenderer


def to_jsonable(value):
    if isinstance(value, Promise):
        return str(value)
    if isinstance(value, decimal.Decimal | uuid.UUID):
        return str(value)
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"Type is not JSON serializable: {type(value).__name__}")


class ORJSONRenderer(JSONRenderer):
    def render(self, data, accepted_media_type=None, renderer_context=None) -> bytes:
        if data is None:
            return b""
        option = orjson.OPT_NON_STR_KEYS
        # The browsable API asks for `indent` (renderer_context, or `; indent=4` in the media
        # type); orjson indents by 2 only, which reads as well. API clients get compact JSON.
        if self.get_indent(accepted_media_type or "", renderer_context or {}):
            option |= orjson.OPT_INDENT_2
        return orjson.dumps(data, default=to_jsonable, option=option)
