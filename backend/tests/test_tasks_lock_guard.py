"""The gateways refuse to call a provider while the connection holds row locks
(backend/integrations/lock_guard.py). PostgreSQL only: SQLite takes no row locks."""

import logging

import pytest
from django.db import transaction

from backend.integrations import storage
from backend.integrations.lock_guard import LockHeldError, assert_no_row_locks
from backend.models import Session, StoredFile
from backend.tests.factories import SessionFactory

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]


@pytest.fixture
def session():
    return SessionFactory()


def lock(session: Session) -> None:
    Session.objects.select_for_update().get(pk=session.pk)


def test_a_call_under_a_row_lock_raises(session):
    with transaction.atomic():
        lock(session)
        with pytest.raises(LockHeldError, match="Stripe called while the database connection"):
            assert_no_row_locks("Stripe")


def test_the_lock_counts_until_the_transaction_ends_not_the_inner_block(session):
    with transaction.atomic():
        with transaction.atomic():
            lock(session)
        # The inner block is gone, its lock is not: it lasts as long as the transaction.
        with pytest.raises(LockHeldError):
            assert_no_row_locks("Stripe")
    assert_no_row_locks("Stripe")  # committed: nothing held


def test_a_transaction_without_locks_may_call(session):
    with transaction.atomic():
        Session.objects.filter(pk=session.pk).values_list("title", flat=True).get()
        assert_no_row_locks("Stripe")
    # A new transaction after a locking one that rolled back starts clean.
    with pytest.raises(ZeroDivisionError), transaction.atomic():
        lock(session)
        1 / 0  # noqa: B018
    with transaction.atomic():
        assert_no_row_locks("Stripe")


def test_the_storage_gateway_refuses_under_a_lock_and_stores_nothing(session, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    }
    with transaction.atomic():
        lock(session)
        with pytest.raises(LockHeldError, match="storage save"):
            storage.save_object(key="a.webp", content=b"x", content_type="image/webp")
    assert list(tmp_path.iterdir()) == []
    assert StoredFile.objects.count() == 0
    assert storage.save_object(key="a.webp", content=b"x", content_type="image/webp") == "a.webp"


def test_in_production_it_logs_instead(session, settings, caplog):
    settings.INTEGRATION_LOCK_GUARD = "log"
    with (
        caplog.at_level(logging.ERROR, logger="backend.integrations.lock_guard"),
        transaction.atomic(),
    ):
        lock(session)
        assert_no_row_locks("Stripe")
    assert [r.getMessage() for r in caplog.records] == [
        "Stripe called while the database connection holds row locks"
    ]
