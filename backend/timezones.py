"""IANA time zone names: one validator for the models, the serializers and the services.

A name is valid when Python's `zoneinfo` knows it (the system database, or the pinned `tzdata`
package where the system has none, as in slim containers). Only names from
`zoneinfo.available_timezones()` are accepted, never a path: `ZoneInfo` itself would also try
to open whatever file a name points at.
"""

from functools import cache
from zoneinfo import ZoneInfo, available_timezones

from django.core.exceptions import ValidationError

DEFAULT_TIMEZONE = "UTC"
TIMEZONE_MAX_LENGTH = 64


@cache
def _known_names() -> frozenset[str]:
    return frozenset(available_timezones()) | {DEFAULT_TIMEZONE}


def is_valid_timezone(name: object) -> bool:
    return isinstance(name, str) and len(name) <= TIMEZONE_MAX_LENGTH and name in _known_names()


def zone(name: str) -> ZoneInfo:
    """The zone of a name that passed `is_valid_timezone` (ZoneInfo caches instances)."""
    return ZoneInfo(name)


def validate_timezone(name: str) -> None:
    """Django field validator: an IANA name such as "Europe/Berlin" or "UTC"."""
    if not is_valid_timezone(name):
        raise ValidationError(
            "Unknown time zone: use an IANA name such as Europe/Berlin or UTC.",
            code="invalid_timezone",
        )
