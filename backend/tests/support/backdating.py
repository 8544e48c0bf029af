"""Moving rows into the past: `created_at` is auto_now_add, so only an UPDATE can set it."""

from datetime import datetime, timedelta
from typing import TypeVar

from django.conf import settings
from django.db.models import Model
from django.utils import timezone

from backend.models import Booking

M = TypeVar("M", bound=Model)


def backdate(instance: M, **moments: datetime | timedelta) -> M:
    """Sets each field to a moment in the past, in the database and on `instance`.

    A timedelta means that long before now (`created_at=timedelta(hours=1)`); a datetime is
    used as given. One UPDATE, no save(): auto_now fields and signals stay out of it.
    """
    now = timezone.now()
    values = {
        field: now - moment if isinstance(moment, timedelta) else moment
        for field, moment in moments.items()
    }
    type(instance)._default_manager.filter(pk=instance.pk).update(**values)
    for field, value in values.items():
        setattr(instance, field, value)
    return instance


def expire_hold(booking: Booking, *, by: timedelta = timedelta(minutes=1)) -> Booking:
    """Backdates a pending booking so that its seat hold (`hold_expires_at`) ran out `by` ago,
    as if it was made BOOKING_HOLD_MINUTES + `by` ago."""
    return backdate(
        booking,
        created_at=timedelta(minutes=settings.BOOKING_HOLD_MINUTES) + by,
        hold_expires_at=by,
    )
