"""What leaves the API about people: the .ics organizer and e-mail without a mail server."""

import os
import subprocess
import sys
from email.utils import parseaddr

import pytest
from icalendar import Calendar

from backend.mail import RedactedConsoleBackend
from backend.tests.conftest import auth_client
from backend.tests.factories import BookingFactory, CreatorFactory, SessionFactory
from backend.tests.test_deploy import REPO, production_env

# --- The booking .ics names the creator, at the platform's address ------------------------------


@pytest.mark.django_db
def test_ics_organizer_is_the_platform_address_with_the_creators_name(settings):
    settings.DEFAULT_FROM_EMAIL = "Sessions Marketplace <bookings@sessions.example.net>"
    creator = CreatorFactory(
        email="hana.private@example.com", first_name="Hana", last_name="Host", username="hanah"
    )
    booking = BookingFactory(session=SessionFactory(creator=creator))

    response = auth_client(booking.user).get(f"/api/bookings/{booking.pk}/calendar.ics")

    assert response.status_code == 200
    event = Calendar.from_ical(response.content).walk("VEVENT")[0]
    assert str(event["ORGANIZER"]) == "mailto:bookings@sessions.example.net"
    assert event["ORGANIZER"].params["CN"] == "Hana Host"
    assert b"hana.private" not in response.content


@pytest.mark.django_db
def test_ics_organizer_falls_back_to_the_username(settings):
    creator = CreatorFactory(email="x@example.com", first_name="", last_name="", username="coach9")
    booking = BookingFactory(session=SessionFactory(creator=creator))
    response = auth_client(booking.user).get(f"/api/bookings/{booking.pk}/calendar.ics")
    event = Calendar.from_ical(response.content).walk("VEVENT")[0]
    assert str(event["ORGANIZER"]) == f"mailto:{parseaddr(settings.DEFAULT_FROM_EMAIL)[1]}"
    assert event["ORGANIZER"].params["CN"] == "coach9"
    assert b"x@example.com" not in response.content


# --- Production without EMAIL_URL: count the mail, never print who it is for ------------------

SEND_ONE = """
import django
django.setup()
from django.conf import settings
from django.core.mail import send_mail
print("backend:", settings.EMAIL_BACKEND)
send_mail(
    "[Sessions Marketplace] Booking confirmed: Morning yoga",
    "Hello Dana Kowalski, your booking #12 for 2 seats is confirmed.",
    None,
    ["dana.kowalski@example.com", "Fatima Haddad <fatima.h@example.com>"],
)
"""


def send_in_production(**env: str) -> str:
    base = {
        "PATH": os.environ["PATH"],
        "LANG": "C.UTF-8",
        "HOME": os.environ.get("HOME", "/"),
        "DJANGO_SETTINGS_MODULE": "core.settings",
    }
    result = subprocess.run(  # noqa: S603 (fixed argv, no shell)
        [sys.executable, "-c", SEND_ONE],
        cwd=REPO,
        env={**base, **production_env(**env)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout + result.stderr


@pytest.mark.parametrize("email_url", ["", "console://"])
def test_production_without_a_mail_server_logs_count_and_subject_only(email_url):
    output = send_in_production(EMAIL_URL=email_url)
    assert "backend: backend.mail.RedactedConsoleBackend" in output
    assert "2 recipient(s)" in output
    assert "Booking confirmed: Morning yoga" in output
    for private in ("dana.kowalski", "fatima.h", "Dana", "Fatima", "Haddad", "#12", "2 seats"):
        assert private not in output


def test_development_console_still_prints_the_whole_message():
    output = send_in_production(DJANGO_DEBUG="true", EMAIL_URL="")
    assert "backend: django.core.mail.backends.console.EmailBackend" in output
    assert "To: dana.kowalski@example.com" in output


def test_redacted_backend_reports_every_message_as_sent(caplog):
    from django.core.mail import EmailMessage

    messages = [
        EmailMessage("Subject one", "body", "from@example.com", ["a@example.com"]),
        EmailMessage("Subject two", "body", "from@example.com", ["b@example.com", "c@x.org"]),
    ]
    with caplog.at_level("WARNING", logger="backend.mail"):
        assert RedactedConsoleBackend().send_messages(messages) == 2
    assert [record.getMessage() for record in caplog.records] == [
        "e-mail not delivered (no EMAIL_URL configured): 1 recipient(s), subject 'Subject one'",
        "e-mail not delivered (no EMAIL_URL configured): 2 recipient(s), subject 'Subject two'",
    ]
