"""CSV export: one admin action helper for every list (bookings, sessions, payments)."""

import csv
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.contrib import admin
from django.db.models import Model, QuerySet
from django.http import HttpRequest, HttpResponse

from backend.serializers.catalog import utc_iso

CsvColumn = tuple[str, Callable[[Any], object]]

# A cell starting with one of these is a formula to a spreadsheet (CSV injection): a session
# title is written by a creator, so text cells get a leading apostrophe.
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return utc_iso(value) or ""
    if isinstance(value, Decimal):
        return f"{value:f}"
    if isinstance(value, int):
        return str(value)
    text = str(value)
    return f"'{text}" if text.startswith(FORMULA_PREFIXES) else text


def write_csv(
    *, filename: str, columns: Sequence[CsvColumn], rows: Iterable[Model]
) -> HttpResponse:
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    writer = csv.writer(response)
    writer.writerow([header for header, _ in columns])
    for row in rows:
        writer.writerow([csv_cell(value(row)) for _, value in columns])
    return response


def csv_export_action(
    *, filename: str, columns: Sequence[CsvColumn], select_related: Sequence[str] = ()
) -> Callable[[admin.ModelAdmin, HttpRequest, QuerySet], HttpResponse]:
    """An admin action that downloads the selected rows, oldest first, as CSV."""

    @admin.action(description="Export selected as CSV", permissions=["view"])
    def export_csv(
        modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet
    ) -> HttpResponse:
        rows = queryset.select_related(*select_related).order_by("pk").iterator(chunk_size=2000)
        return write_csv(filename=filename, columns=columns, rows=rows)

    return export_csv


BOOKING_COLUMNS: list[CsvColumn] = [
    ("id", lambda b: b.pk),
    ("created_at", lambda b: b.created_at),
    ("user", lambda b: b.user.username),
    ("email", lambda b: b.user.email),
    ("session_id", lambda b: b.session_id),
    ("session", lambda b: b.session.title),
    ("session_start", lambda b: b.session.start_time),
    ("seats", lambda b: b.seats),
    ("status", lambda b: b.status),
    ("payment_status", lambda b: b.payment_status),
    ("amount", lambda b: b.amount),
    ("refunded_amount", lambda b: b.refunded_amount),
    ("currency", lambda b: b.currency),
    ("confirmed_at", lambda b: b.confirmed_at),
    ("cancelled_at", lambda b: b.cancelled_at),
]

SESSION_COLUMNS: list[CsvColumn] = [
    ("id", lambda s: s.pk),
    ("title", lambda s: s.title),
    ("creator", lambda s: s.creator.username),
    ("category", lambda s: s.category),
    ("start_time", lambda s: s.start_time),
    ("duration_minutes", lambda s: s.duration_minutes),
    ("capacity", lambda s: s.capacity),
    ("price", lambda s: s.price),
    ("currency", lambda s: s.currency),
    ("is_online", lambda s: s.is_online),
    ("status", lambda s: s.status),
    ("created_at", lambda s: s.created_at),
]

PAYMENT_COLUMNS: list[CsvColumn] = [
    ("id", lambda p: p.pk),
    ("created_at", lambda p: p.created_at),
    ("booking_id", lambda p: p.booking_id),
    ("user", lambda p: p.booking.user.username),
    ("kind", lambda p: p.kind),
    ("stripe_id", lambda p: p.stripe_id),
    ("amount", lambda p: p.amount),
    ("currency", lambda p: p.currency),
    ("status", lambda p: p.status),
]
