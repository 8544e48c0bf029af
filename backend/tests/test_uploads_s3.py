"""Uploads against a real S3 API over HTTP on loopback (moto's server), configured exactly as a
MinIO deployment would be: AWS_STORAGE_BUCKET_NAME, AWS_S3_ENDPOINT_URL, keys, region."""

import socket
import urllib.request
import uuid

import boto3
import pytest
from moto.server import ThreadedMotoServer

from backend.models import StoredFile
from backend.tests import images
from backend.tests.factories import CreatorFactory, SessionFactory, StoredFileFactory, UserFactory
from backend.tests.support import auth_client

UPLOAD_URL = "/api/storage/upload/"
DELETE_URL = "/api/storage/delete/"
S3_BACKEND = "backend.integrations.storage.MediaS3Storage"
ACCESS_KEY = "minio-access-key"
SECRET_KEY = "minio-secret-key"

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def s3_endpoint():
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


def s3_client(endpoint: str):
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
    )


def use_s3(settings, *, endpoint: str, bucket: str) -> None:
    """What .env would say for MinIO. STORAGES goes last: changing it drops the cached storage
    (and default_storage, which FileFields hold), so the next use reads the AWS_* above."""
    settings.AWS_STORAGE_BUCKET_NAME = bucket
    settings.AWS_S3_ENDPOINT_URL = endpoint
    settings.AWS_ACCESS_KEY_ID = ACCESS_KEY
    settings.AWS_SECRET_ACCESS_KEY = SECRET_KEY
    settings.AWS_S3_REGION_NAME = "us-east-1"
    settings.AWS_S3_ADDRESSING_STYLE = "path"
    settings.AWS_S3_CUSTOM_DOMAIN = None
    settings.AWS_QUERYSTRING_AUTH = True
    settings.AWS_S3_MAX_ATTEMPTS = 1
    settings.AWS_S3_TIMEOUT_SECONDS = 5
    settings.STORAGES = {**settings.STORAGES, "default": {"BACKEND": S3_BACKEND}}


@pytest.fixture
def bucket(settings, s3_endpoint):
    """A fresh private bucket per test on the shared moto server; yields (client, name)."""
    client = s3_client(s3_endpoint)
    name = f"media-{uuid.uuid4().hex[:12]}"
    client.create_bucket(Bucket=name)
    use_s3(settings, endpoint=s3_endpoint, bucket=name)
    return client, name


def object_keys(bucket) -> list[str]:
    client, name = bucket
    return sorted(item["Key"] for item in client.list_objects_v2(Bucket=name).get("Contents", []))


def object_bytes(bucket, key: str) -> bytes:
    client, name = bucket
    return client.get_object(Bucket=name, Key=key)["Body"].read()


def closed_port_endpoint() -> str:
    """A loopback port nothing listens on: connections are refused at once."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def post_upload(client, data: bytes, **fields):
    payload = {"file": images.upload(data), **fields}
    return client.post(UPLOAD_URL, payload, format="multipart")


@pytest.mark.parametrize(
    "source",
    [images.jpeg_bytes(gps=True), images.png_bytes(gps=True), images.webp_bytes(gps=True)],
    ids=["jpeg", "png", "webp"],
)
def test_avatar_is_stored_in_the_bucket_as_clean_webp(user, user_client, bucket, source):
    response = post_upload(user_client, source, purpose="avatar")

    assert response.status_code == 201
    key = response.json()["key"]
    assert object_keys(bucket) == [key]
    client, name = bucket
    head = client.head_object(Bucket=name, Key=key)
    assert head["ContentType"] == "image/webp"
    content = object_bytes(bucket, key)
    stored = StoredFile.objects.get()
    assert (stored.owner, stored.key, stored.size, stored.content_type) == (
        user,
        key,
        len(content),
        "image/webp",
    )
    image = images.opened(content)
    assert image.format == "WEBP"
    assert dict(image.getexif()) == {}
    user.refresh_from_db()
    assert user.avatar.name == key


def test_session_image_is_stored_as_jpeg_with_its_content_type(creator, creator_client, bucket):
    session = SessionFactory(creator=creator)

    response = post_upload(
        creator_client,
        images.webp_bytes(gps=True),
        purpose="session_image",
        session_id=session.pk,
    )

    assert response.status_code == 201
    key = response.json()["key"]
    assert key.startswith(f"sessions/{session.pk}/")
    client, name = bucket
    assert client.head_object(Bucket=name, Key=key)["ContentType"] == "image/jpeg"
    image = images.opened(object_bytes(bucket, key))
    assert (image.format, dict(image.getexif())) == ("JPEG", {})
    session.refresh_from_db()
    assert session.image.name == key


def test_private_bucket_urls_are_presigned_and_load(user_client, bucket, s3_endpoint):
    response = post_upload(user_client, images.png_bytes(), purpose="avatar")

    body = response.json()
    _, name = bucket
    assert body["url"].startswith(f"{s3_endpoint}/{name}/{body['key']}?")
    assert "X-Amz-Expires=3600" in body["url"]
    assert "X-Amz-Signature=" in body["url"]
    # A browser following the URL gets the image with its content type.
    with urllib.request.urlopen(body["url"], timeout=5) as fetched:  # noqa: S310 (loopback)
        assert fetched.headers["Content-Type"] == "image/webp"
        assert fetched.read() == object_bytes(bucket, body["key"])


def test_custom_domain_urls_are_plain(settings, user_client, bucket):
    settings.AWS_S3_CUSTOM_DOMAIN = "media.example.com"
    settings.AWS_QUERYSTRING_AUTH = False
    settings.STORAGES = {**settings.STORAGES, "default": {"BACKEND": S3_BACKEND}}

    response = post_upload(user_client, images.png_bytes(), purpose="avatar")

    body = response.json()
    assert body["url"] == f"https://media.example.com/{body['key']}"
    assert object_keys(bucket) == [body["key"]]


def test_polyglot_payload_never_reaches_the_bucket(user_client, bucket):
    zip_payload = b"PK\x03\x04" + b"\x00" * 26 + b"shell.php<?php system($_GET[c]); ?>"

    response = post_upload(user_client, images.png_bytes() + zip_payload, purpose="avatar")

    assert response.status_code == 201
    content = object_bytes(bucket, response.json()["key"])
    assert b"PK\x03\x04" not in content
    assert b"<?php" not in content


@pytest.mark.parametrize(
    "data",
    [images.SVG, images.HTML_PAYLOAD, images.huge_png_bytes(20_000, 20_000)],
    ids=["svg", "html", "20000x20000-png"],
)
def test_refused_files_never_reach_the_bucket(user_client, bucket, data):
    response = post_upload(user_client, data, purpose="avatar")

    assert response.status_code == 400
    assert object_keys(bucket) == []
    assert StoredFile.objects.count() == 0


def test_oversize_is_413_and_nothing_is_stored(user_client, bucket):
    response = post_upload(
        user_client, images.png_bytes() + b"\x00" * (5 * 1024 * 1024), purpose="avatar"
    )

    assert response.status_code == 413
    assert object_keys(bucket) == []
    assert StoredFile.objects.count() == 0


def test_replacing_an_avatar_deletes_the_old_object(
    user, user_client, bucket, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        first = post_upload(user_client, images.jpeg_bytes(), purpose="avatar").json()["key"]
    assert object_keys(bucket) == [first]

    with django_capture_on_commit_callbacks(execute=True):
        second = post_upload(user_client, images.png_bytes(), purpose="avatar").json()["key"]

    assert object_keys(bucket) == [second]
    assert list(StoredFile.objects.values_list("key", flat=True)) == [second]
    user.refresh_from_db()
    assert user.avatar.name == second


def test_owner_deletes_the_object(user, user_client, bucket):
    key = post_upload(user_client, images.png_bytes(), purpose="avatar").json()["key"]

    response = user_client.delete(DELETE_URL, {"key": key}, format="json")

    assert response.status_code == 204
    assert object_keys(bucket) == []
    assert StoredFile.objects.count() == 0
    user.refresh_from_db()
    assert user.avatar.name == ""


def test_someone_elses_key_is_404_and_the_object_stays(user, user_client, bucket):
    key = post_upload(user_client, images.png_bytes(), purpose="avatar").json()["key"]

    response = auth_client(UserFactory()).delete(DELETE_URL, {"key": key}, format="json")

    assert response.status_code == 404
    assert object_keys(bucket) == [key]
    assert StoredFile.objects.filter(key=key, owner=user).count() == 1
    user.refresh_from_db()
    assert user.avatar.name == key


def test_someone_elses_session_is_404_and_nothing_is_stored(creator_client, bucket):
    theirs = SessionFactory(creator=CreatorFactory())

    response = post_upload(
        creator_client, images.png_bytes(), purpose="session_image", session_id=theirs.pk
    )

    assert response.status_code == 404
    assert object_keys(bucket) == []
    assert StoredFile.objects.count() == 0
    theirs.refresh_from_db()
    assert theirs.image.name == ""


def test_storage_down_is_503_and_leaves_no_row(settings, user, user_client):
    use_s3(settings, endpoint=closed_port_endpoint(), bucket="media")

    response = post_upload(user_client, images.png_bytes(), purpose="avatar")

    assert response.status_code == 503
    assert response.json() == {
        "detail": "File storage is unavailable; please retry in a moment.",
        "code": "storage_unavailable",
    }
    assert StoredFile.objects.count() == 0
    user.refresh_from_db()
    assert user.avatar.name == ""


def test_missing_bucket_is_503_and_leaves_no_row(settings, user_client, s3_endpoint):
    use_s3(settings, endpoint=s3_endpoint, bucket=f"missing-{uuid.uuid4().hex[:12]}")

    response = post_upload(user_client, images.png_bytes(), purpose="avatar")

    assert response.status_code == 503
    assert response.json()["code"] == "storage_unavailable"
    assert StoredFile.objects.count() == 0


def test_delete_while_storage_is_down_is_503_and_changes_nothing(
    settings, user, user_client, bucket
):
    key = post_upload(user_client, images.png_bytes(), purpose="avatar").json()["key"]
    _, name = bucket
    use_s3(settings, endpoint=closed_port_endpoint(), bucket=name)

    response = user_client.delete(DELETE_URL, {"key": key}, format="json")

    assert response.status_code == 503
    assert response.json()["code"] == "storage_unavailable"
    assert StoredFile.objects.filter(key=key).count() == 1
    user.refresh_from_db()
    assert user.avatar.name == key
    assert object_keys(bucket) == [key]


def test_failed_database_write_deletes_the_object_from_the_bucket(
    user, user_client, bucket, monkeypatch
):
    fixed = uuid.UUID("87654321-4321-4321-8321-cba987654321")
    StoredFileFactory(key=f"avatars/{fixed}.webp")
    monkeypatch.setattr("backend.services.files.uuid.uuid4", lambda: fixed)

    response = post_upload(user_client, images.png_bytes(), purpose="avatar")

    assert response.status_code == 400
    assert object_keys(bucket) == []
    assert StoredFile.objects.count() == 1
    user.refresh_from_db()
    assert user.avatar.name == ""
