"""Helpers for the admin tests: a staff login, the session form as a browser posts it."""

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from django.contrib.messages import get_messages
from django.http import HttpResponse
from django.test import Client
from django.utils import timezone

from backend.models import Session, User

if TYPE_CHECKING:
    # What the test client returns: an HttpResponse with wsgi_request, context, templates.
    from django.test.client import _MonkeyPatchedWSGIResponse as ClientResponse
else:
    ClientResponse = HttpResponse

SESSIONS_URL = "/admin/backend/session/"
BOOKINGS_URL = "/admin/backend/booking/"
PAYMENTS_URL = "/admin/backend/payment/"


def log_in_staff(client: Client, username: str = "mona") -> User:
    staff = User.objects.create_superuser(username, f"{username}@example.com", "a-long-pass-1")
    client.force_login(staff)
    return staff


def session_form(session: Session | None = None, **overrides: Any) -> dict[str, Any]:
    """The change form's fields with the session's current values, as the browser sends them.

    Without a session: a valid "add" form (the creator must be given as `creator`).
    """
    if session is None:
        start = (timezone.now() + timedelta(days=10)).replace(hour=18, minute=0, second=0)
        data: dict[str, Any] = {
            "title": "Intro to machine learning",
            "description": "",
            "category": "data",
            "price": "20.00",
            "currency": "USD",
            "duration_minutes": "60",
            "start_time_0": start.strftime("%Y-%m-%d"),
            "start_time_1": start.strftime("%H:%M:%S"),
            "capacity": "3",
            "location": "",
            "is_online": "on",
            "meeting_url": "https://meet.example.com/ml",
            "status": "published",
        }
    else:
        start = session.start_time
        data = {
            "title": session.title,
            "description": session.description,
            "category": session.category,
            "price": f"{session.price:f}",
            "currency": session.currency,
            "duration_minutes": str(session.duration_minutes),
            "start_time_0": start.strftime("%Y-%m-%d"),
            "start_time_1": start.strftime("%H:%M:%S"),
            "capacity": str(session.capacity),
            "location": session.location,
            "meeting_url": session.meeting_url,
            "status": session.status,
        }
        if session.is_online:
            data["is_online"] = "on"
    for name, value in overrides.items():
        if value is None:
            data.pop(name, None)
        else:
            data[name] = value
    return data


def change_url(base: str, pk: int) -> str:
    return f"{base}{pk}/change/"


def message_texts(response: ClientResponse) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


def form_errors(response: ClientResponse) -> dict[str, list[str]]:
    """The admin form's errors by field ("__all__" for the form's own) from a re-rendered page."""
    form = response.context["adminform"].form
    return {name: [str(e) for e in errors] for name, errors in form.errors.items()}
