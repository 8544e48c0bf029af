# Loaded with Django, so tasks and the outbox relay publish through the configured app.
from core.celery import app as celery_app

__all__ = ["celery_app"]
