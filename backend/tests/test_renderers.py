import decimal
import uuid

import orjson
from django.utils.translation import gettext_lazy

from backend.renderers import ORJSONRenderer


def test_renders_what_drf_responses_contain():
    data = {
        "detail": gettext_lazy("Not found."),
        "price": decimal.Decimal("25.00"),
        "id": uuid.UUID("12345678-1234-5678-1234-567812345678"),
        "tags": ("a", "b"),
        "nested": [{"ü": "ünïcode"}],
        1: "non-string key",
    }
    rendered = ORJSONRenderer().render(data)
    assert orjson.loads(rendered) == {
        "detail": "Not found.",
        "price": "25.00",
        "id": "12345678-1234-5678-1234-567812345678",
        "tags": ["a", "b"],
        "nested": [{"ü": "ünïcode"}],
        "1": "non-string key",
    }


def test_none_renders_empty_body():
    assert ORJSONRenderer().render(None) == b""
