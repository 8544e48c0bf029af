"""Creates the admin account from DJANGO_SUPERUSER_USERNAME/EMAIL/PASSWORD (container start).

Nothing set: nothing happens (no built-in default account, no default password). Some but not
all set: an error, because a half-configured admin is a mistake worth stopping for. An existing
account is left as it is, so a restart never resets a password changed in the admin. With
DJANGO_DEBUG=false a weak or example password is refused.
"""

import os

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

VARIABLES = ("DJANGO_SUPERUSER_USERNAME", "DJANGO_SUPERUSER_EMAIL", "DJANGO_SUPERUSER_PASSWORD")
# Fragments of the values people copy from examples and tutorials.
EXAMPLE_FRAGMENTS = ("change-me", "changeme", "change_me", "example", "password", "secret")
MIN_PRODUCTION_LENGTH = 12


def password_problems(password: str, *, username: str, email: str) -> list[str]:
    """Why `password` is not fit for a production admin (empty list: it is)."""
    problems = []
    if len(password) < MIN_PRODUCTION_LENGTH:
        problems.append(f"it is shorter than {MIN_PRODUCTION_LENGTH} characters")
    lowered = password.lower()
    if any(fragment in lowered for fragment in EXAMPLE_FRAGMENTS) or lowered == username.lower():
        problems.append("it looks like an example or placeholder value")
    user = get_user_model()(username=username, email=email)
    try:
        validate_password(password, user=user)
    except ValidationError as error:
        problems.extend(message.rstrip(".") for message in error.messages)
    return problems


class Command(BaseCommand):
    help = "Creates the superuser from DJANGO_SUPERUSER_* when all are set (idempotent)."

    @transaction.atomic
    def handle(self, *args, **options):
        values = {name: os.environ.get(name, "").strip() for name in VARIABLES}
        if not any(values.values()):
            self.stdout.write("ensure_superuser: DJANGO_SUPERUSER_* not set, no admin created.")
            return
        missing = [name for name, value in values.items() if not value]
        if missing:
            raise CommandError(
                f"ensure_superuser: set all of {', '.join(VARIABLES)} or none; "
                f"missing: {', '.join(missing)}."
            )
        username = values["DJANGO_SUPERUSER_USERNAME"]
        email = values["DJANGO_SUPERUSER_EMAIL"]
        password = values["DJANGO_SUPERUSER_PASSWORD"]

        user_model = get_user_model()
        if user_model.objects.filter(username=username).exists():
            self.stdout.write(f"ensure_superuser: {username!r} exists, left unchanged.")
            return

        problems = password_problems(password, username=username, email=email)
        if problems and not settings.DEBUG:
            # The password itself is never printed: it would end up in container logs.
            raise CommandError(
                "ensure_superuser: DJANGO_SUPERUSER_PASSWORD is refused with DJANGO_DEBUG=false: "
                + "; ".join(problems)
                + ". Choose a long random one, e.g. "
                "python -c 'import secrets; print(secrets.token_urlsafe(24))'."
            )
        if problems:
            self.stderr.write(
                "ensure_superuser: weak password accepted only because DJANGO_DEBUG is true: "
                + "; ".join(problems)
            )
        user_model.objects.create_superuser(username=username, email=email, password=password)
        self.stdout.write(f"ensure_superuser: superuser {username!r} created.")
