"""Account deletion and export against a real S3 API on loopback (moto's server): the user's
objects leave the bucket, the export links them with fresh presigned URLs."""

import urllib.request
import uuid
from datetime import timedelta

import pytest
from django.utils import timezone
from moto.server import ThreadedMotoServer

from backend.models import Session, StoredFile, User
from backend.tests import images
from backend.tests.factories import CreatorFactory, SessionFactory, UserFactory
from backend.tests.privacy_support import EXPORT_URL, ME_URL
from backend.tests.support import auth_client
from backend.tests.test_uploads_s3 import (
    closed_port_endpoint,
    object_bytes,
    object_keys,
    post_upload,
    s3_client,
    use_s3,
)

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def s3_endpoint():
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def bucket(settings, s3_endpoint):
    """A fresh private bucket per test, as in test_uploads_s3.py; yields (client, name)."""
    client = s3_client(s3_endpoint)
    name = f"privacy-{uuid.uuid4().hex[:12]}"
    client.create_bucket(Bucket=name)
    use_s3(settings, endpoint=s3_endpoint, bucket=name)
    return client, name


def upload(client, purpose: str, **fields) -> str:
    response = post_upload(client, images.png_bytes(), purpose=purpose, **fields)
    assert response.status_code == 201, response.content
    return response.json()["key"]


def test_deletion_removes_every_object_of_the_user_from_the_bucket(bucket):
    creator = CreatorFactory()
    client = auth_client(creator)
    past = SessionFactory(creator=creator)
    upcoming = SessionFactory(creator=creator)
    avatar_key = upload(client, "avatar")
    past_key = upload(client, "session_image", session_id=past.pk)
    upcoming_key = upload(client, "session_image", session_id=upcoming.pk)
    Session.objects.filter(pk=past.pk).update(start_time=timezone.now() - timedelta(days=2))
    other_key = upload(auth_client(UserFactory()), "avatar")
    assert object_keys(bucket) == sorted([avatar_key, past_key, upcoming_key, other_key])

    response = client.delete(ME_URL)

    assert response.status_code == 204
    assert object_keys(bucket) == [other_key]
    assert not StoredFile.objects.filter(owner=creator).exists()
    assert StoredFile.objects.filter(key=other_key).exists()
    creator.refresh_from_db()
    assert creator.avatar.name == ""
    # The past session stays (its attendees' bookings), without the deleted image.
    assert Session.objects.get(pk=past.pk).image.name == ""
    assert not Session.objects.filter(pk=upcoming.pk).exists()


def test_export_lists_the_users_files_with_fresh_urls_that_load(bucket, s3_endpoint):
    user = UserFactory()
    client = auth_client(user)
    key = upload(client, "avatar")
    upload(auth_client(UserFactory()), "avatar")

    files = client.get(EXPORT_URL).json()["files"]

    (exported,) = files
    stored = StoredFile.objects.get(key=key)
    assert {name: exported[name] for name in ("key", "purpose", "session", "size")} == {
        "key": key,
        "purpose": "avatar",
        "session": None,
        "size": stored.size,
    }
    _, name = bucket
    assert exported["url"].startswith(f"{s3_endpoint}/{name}/{key}?")
    assert "X-Amz-Signature=" in exported["url"]
    with urllib.request.urlopen(exported["url"], timeout=5) as fetched:  # noqa: S310 (loopback)
        assert fetched.read() == object_bytes(bucket, key)


def test_storage_down_leaves_the_account_as_it_was_and_a_retry_finishes(settings, bucket):
    user = UserFactory(username="keepme")
    client = auth_client(user)
    key = upload(client, "avatar")
    _, name = bucket
    endpoint = settings.AWS_S3_ENDPOINT_URL
    use_s3(settings, endpoint=closed_port_endpoint(), bucket=name)

    response = client.delete(ME_URL)

    assert response.status_code == 503
    assert response.json()["code"] == "storage_unavailable"
    user.refresh_from_db()
    assert (user.username, user.is_active, user.avatar.name) == ("keepme", True, key)
    assert StoredFile.objects.filter(key=key).exists()

    use_s3(settings, endpoint=endpoint, bucket=name)
    assert client.delete(ME_URL).status_code == 204
    assert object_keys(bucket) == []
    assert not User.objects.get(pk=user.pk).is_active
