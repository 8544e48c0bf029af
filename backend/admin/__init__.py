"""The Django admin: staff look things up here and act through the same services as the API.

Nothing here writes a booking or a session field by hand. Sessions are validated by the API's
SessionWriteSerializer and saved by services.catalog; bookings change only through the
actions, which call services.bookings, so capacity, transitions and refunds follow one set of
rules whoever acts. A refused change is shown with the domain error's message and changes
nothing.
"""

from django.contrib import admin
from django.contrib.auth.models import Group
from social_django.models import Association, Nonce, UserSocialAuth

# Importing the modules registers their ModelAdmins.
from backend.admin import bookings, catalog, payouts, records, reviews, users

__all__ = ["bookings", "catalog", "payouts", "records", "reviews", "users"]

# Pages for models nobody uses. Sign-in stores the provider identity on User
# (oauth_provider, oauth_uid), so social_django's tables stay empty (Nonce and Association
# are OpenID 1/2 only); staff are not managed through permission groups.
for unused in (Group, UserSocialAuth, Nonce, Association):
    admin.site.unregister(unused)
