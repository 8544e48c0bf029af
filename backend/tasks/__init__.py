"""Background tasks, one module per domain (Celery's autodiscovery imports this package).

Importing it registers every outbox handler and periodic job; backend.apps imports it at start
so that the web process can run tasks inline and the registry is complete everywhere.
"""

from backend.tasks import (
    bookings,
    maintenance,
    notifications,
    payments,
    payouts,
    periodic,
    reminders,
    webhooks,
)

__all__ = [
    "bookings",
    "maintenance",
    "notifications",
    "payments",
    "payouts",
    "periodic",
    "reminders",
    "webhooks",
]
