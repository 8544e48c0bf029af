"""Recurrence rules (RFC 5545 RRULE, expanded by python-dateutil) in a creator's wall-clock time.

A series says "every Monday at 18:30 in Europe/Berlin", not "every 7 days at 17:30 UTC": 18:30
is 17:30 UTC in winter and 16:30 UTC in summer. So the rule is expanded on *naive* local
datetimes (dateutil steps days and weeks on the calendar, never through a UTC offset), and only
then is each date localized with zoneinfo into an instant.

Wall-clock times that do not exist or exist twice (the DST changes themselves, in zones that
change at night) follow zoneinfo's `fold=0`: a time in the spring gap moves forward by the gap
(02:30 becomes 03:30), a time in the autumn overlap is its first (summer-time) instance.

What a rule may be (each refusal is a ValidationFailed with its own code, nothing created):
- one RRULE line, with or without the `RRULE:` prefix; the start comes from `local_start`, so no
  DTSTART, RDATE or EXDATE (`invalid_rrule`);
- FREQ DAILY, WEEKLY, MONTHLY or YEARLY (`unsupported_rrule`); no BYHOUR, BYMINUTE or BYSECOND:
  every occurrence starts at local_start's time of day (`unsupported_rrule`);
- COUNT or UNTIL, not both (`rrule_unbounded`, `invalid_rrule`), at most MAX_OCCURRENCES dates
  (`too_many_occurrences`), the last within HORIZON_DAYS (`occurrence_too_far`), none in the
  past (`occurrence_in_past`), and at least one (`no_occurrences`).
- UNTIL: `YYYYMMDDTHHMMSSZ` (UTC, as RFC 5545 asks when the start has a zone), a floating
  `YYYYMMDDTHHMMSS` (wall clock in the series' zone), or a date `YYYYMMDD` (the whole local
  day included). Like RFC 5545, UNTIL is inclusive.

As in python-dateutil (and unlike RFC 5545's DTSTART rule), `local_start` itself is an
occurrence only when it matches the rule: a Monday start with BYDAY=TU,TH begins on Tuesday.
"""

import re
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from itertools import islice
from zoneinfo import ZoneInfo

from dateutil.rrule import rrule, rrulestr

from backend.exceptions import ValidationFailed

MAX_OCCURRENCES = 52
# The same bound as a one-off session's start (MAX_DAYS_AHEAD in serializers/catalog.py).
HORIZON_DAYS = 5 * 365

ALLOWED_FREQUENCIES = ("DAILY", "WEEKLY", "MONTHLY", "YEARLY")
TIME_OF_DAY_PARTS = ("BYHOUR", "BYMINUTE", "BYSECOND")
KNOWN_PARTS = frozenset(
    {
        "FREQ",
        "INTERVAL",
        "COUNT",
        "UNTIL",
        "BYDAY",
        "BYMONTHDAY",
        "BYYEARDAY",
        "BYWEEKNO",
        "BYMONTH",
        "BYSETPOS",
        "WKST",
        *TIME_OF_DAY_PARTS,
    }
)
UNTIL_FORMAT = re.compile(r"^(\d{8})(?:T(\d{6})(Z?))?$")
PART_NAME = re.compile(r"^[A-Z]+$")
FLOATING = "%Y%m%dT%H%M%S"
MAX_INTERVAL = 1000
# RFC 5545 value ranges, checked here because dateutil accepts some values outside them
# (BYMONTHDAY=0 becomes "every day", INTERVAL=0 repeats the start forever).
SIGNED_RANGES = {"BYMONTHDAY": 31, "BYYEARDAY": 366, "BYWEEKNO": 53, "BYSETPOS": 366}
WEEKDAY = re.compile(r"^([+-]?)(\d{1,2})?(MO|TU|WE|TH|FR|SA|SU)$")
SIGNED_NUMBER = re.compile(r"^[+-]?\d{1,3}$")


@dataclass(frozen=True)
class Occurrence:
    position: int  # 1-based, in date order
    local_start: datetime  # naive, wall clock in the series' zone
    start_time: datetime  # the instant, in UTC


@dataclass(frozen=True)
class Expansion:
    rrule: str  # the rule as stored: upper case, without the RRULE: prefix
    occurrences: list[Occurrence]


def _invalid(message: str, code: str = "invalid_rrule") -> ValidationFailed:
    return ValidationFailed(message, code=code)


def _parse_parts(text: str) -> dict[str, str]:
    """`FREQ=WEEKLY;COUNT=8` -> {"FREQ": "WEEKLY", "COUNT": "8"}, names checked."""
    if any(char in text for char in "\r\n"):
        raise _invalid(
            "Send one RRULE line; the start comes from local_start (no DTSTART, RDATE, EXDATE)."
        )
    body = text.strip()
    if body.upper().startswith("RRULE:"):
        body = body[len("RRULE:") :]
    parts: dict[str, str] = {}
    for piece in body.split(";"):
        if not piece.strip():
            continue
        name, sep, value = piece.partition("=")
        name, value = name.strip().upper(), value.strip().upper()
        if not sep or not value or not PART_NAME.match(name):
            raise _invalid(f"Not an RRULE part: {piece.strip()[:40]!r} (expected NAME=VALUE).")
        if name in parts:
            raise _invalid(f"{name} appears twice.")
        if name not in KNOWN_PARTS:
            raise _invalid(f"Unknown RRULE part {name}.", "unsupported_rrule")
        parts[name] = value
    if "FREQ" not in parts:
        raise _invalid("The rule needs a FREQ, e.g. FREQ=WEEKLY;COUNT=8.")
    if parts["FREQ"] not in ALLOWED_FREQUENCIES:
        raise _invalid(
            f"FREQ must be one of {', '.join(ALLOWED_FREQUENCIES)}.", "unsupported_rrule"
        )
    time_parts = [name for name in TIME_OF_DAY_PARTS if name in parts]
    if time_parts:
        raise _invalid(
            f"{', '.join(time_parts)} not supported: every occurrence starts at the time of "
            "day of local_start.",
            "unsupported_rrule",
        )
    if "COUNT" not in parts and "UNTIL" not in parts:
        raise _invalid(
            f"The rule needs COUNT or UNTIL (at most {MAX_OCCURRENCES} occurrences).",
            "rrule_unbounded",
        )
    if "COUNT" in parts and "UNTIL" in parts:
        raise _invalid("COUNT and UNTIL cannot both be given (RFC 5545).")
    return parts


def _check_values(parts: dict[str, str]) -> None:
    """RFC 5545 ranges for INTERVAL and the BY* lists (dateutil checks the syntax of the rest)."""
    interval = parts.get("INTERVAL")
    if interval is not None and not (interval.isdigit() and 1 <= int(interval) <= MAX_INTERVAL):
        raise _invalid(f"INTERVAL must be a whole number from 1 to {MAX_INTERVAL}.")
    for name, limit in SIGNED_RANGES.items():
        for value in parts.get(name, "").split(",") if name in parts else ():
            if not SIGNED_NUMBER.match(value) or not 1 <= abs(int(value)) <= limit:
                raise _invalid(f"{name} values must be from 1 to {limit} or -{limit} to -1.")
    for value in parts.get("BYMONTH", "").split(",") if "BYMONTH" in parts else ():
        if not value.isdigit() or not 1 <= int(value) <= 12:
            raise _invalid("BYMONTH values must be from 1 to 12.")
    for value in parts.get("BYDAY", "").split(",") if "BYDAY" in parts else ():
        match = WEEKDAY.match(value)
        if match is None or (match.group(2) is not None and not 1 <= int(match.group(2)) <= 53):
            raise _invalid("BYDAY values look like MO, TU, ... or 1MO, -1FR (1 to 53).")


def _count(value: str) -> int:
    if not value.isdigit() or int(value) < 1:
        raise _invalid("COUNT must be a whole number of at least 1.")
    count = int(value)
    if count > MAX_OCCURRENCES:
        raise _invalid(
            f"COUNT={count}: a series has at most {MAX_OCCURRENCES} occurrences.",
            "too_many_occurrences",
        )
    return count


def _until_local(value: str, zone: ZoneInfo) -> datetime:
    """UNTIL as a naive wall-clock datetime in `zone` (inclusive)."""
    match = UNTIL_FORMAT.match(value)
    if match is None:
        raise _invalid("UNTIL must look like 20270301T000000Z, 20270301T000000 or 20270301.")
    day, clock, utc = match.groups()
    try:
        if clock is None:
            return datetime.combine(datetime.strptime(day, "%Y%m%d").date(), time.max)
        until = datetime.strptime(f"{day}T{clock}", FLOATING)
    except ValueError as error:
        raise _invalid(f"UNTIL is not a valid date-time: {error}.") from error
    if utc:
        return until.replace(tzinfo=UTC).astimezone(zone).replace(tzinfo=None)
    return until


def _localize(local: datetime, zone: ZoneInfo) -> datetime:
    # fold=0 (the default): gap times move forward, overlap times take the first instance.
    return local.replace(tzinfo=zone).astimezone(UTC)


def expand(*, rule_text: str, local_start: datetime, zone: ZoneInfo, now: datetime) -> Expansion:
    """The dates of `rule_text` from the naive `local_start` on, localized in `zone`.

    Raises ValidationFailed (with the reason and a code) for any rule a series cannot have.
    """
    if local_start.tzinfo is not None:
        raise ValueError("local_start must be naive (a wall-clock time)")
    local_start = local_start.replace(microsecond=0)
    parts = _parse_parts(rule_text)
    _check_values(parts)
    horizon = (now.astimezone(zone) + timedelta(days=HORIZON_DAYS)).replace(tzinfo=None)
    count = _count(parts["COUNT"]) if "COUNT" in parts else None
    if "UNTIL" in parts:
        until = _until_local(parts["UNTIL"], zone)
        if until > horizon:
            raise _invalid(
                f"UNTIL must be within {HORIZON_DAYS // 365} years from now.", "occurrence_too_far"
            )
    else:
        until = horizon
    # dateutil gets a bounded rule in any case (UNTIL in the local wall clock, never COUNT),
    # so even a rule that matches no date stops at the horizon instead of scanning to 9999.
    bounded = {name: value for name, value in parts.items() if name not in ("COUNT", "UNTIL")}
    bounded["UNTIL"] = until.replace(microsecond=0).strftime(FLOATING)
    text = "RRULE:" + ";".join(f"{name}={value}" for name, value in bounded.items())
    try:
        parsed = rrulestr(text, dtstart=local_start)
    except (ValueError, TypeError, OverflowError, IndexError, KeyError) as error:
        raise _invalid(f"Not a valid RRULE: {error}.") from error
    if not isinstance(parsed, rrule):
        raise _invalid("Send one RRULE line.")
    try:
        dates = list(islice(parsed, (count or MAX_OCCURRENCES) + 1))
    except (ValueError, OverflowError) as error:
        raise _invalid(f"Not a valid RRULE: {error}.") from error

    if not dates:
        raise _invalid("The rule gives no date from local_start on.", "no_occurrences")
    if count is not None:
        if len(dates) < count:
            raise _invalid(
                f"COUNT={count} reaches past {HORIZON_DAYS // 365} years from now.",
                "occurrence_too_far",
            )
        dates = dates[:count]
    elif len(dates) > MAX_OCCURRENCES:
        raise _invalid(
            f"The rule gives more than {MAX_OCCURRENCES} occurrences before UNTIL.",
            "too_many_occurrences",
        )
    occurrences = [
        Occurrence(position=index, local_start=local, start_time=_localize(local, zone))
        for index, local in enumerate(dates, start=1)
    ]
    first = occurrences[0]
    if first.start_time <= now:
        raise _invalid(
            f"The first occurrence ({first.local_start.isoformat(timespec='minutes')} "
            "local time) is not in the future.",
            "occurrence_in_past",
        )
    stored = ";".join(f"{name}={value}" for name, value in parts.items())
    return Expansion(rrule=stored, occurrences=occurrences)
