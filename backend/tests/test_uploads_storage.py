"""Uploads on file system storage: fields, ownership, replace, delete, schema, races, throttle."""

import uuid

import pytest
from rest_framework.throttling import ScopedRateThrottle

from backend.models import Session, StoredFile, User
from backend.tests import images
from backend.tests.factories import CreatorFactory, SessionFactory, StoredFileFactory, UserFactory
from backend.tests.support import auth_client, run_concurrently
from backend.tests.support.uploads import (
    DELETE_URL,
    UPLOAD_URL,
    post_upload,
    stored_files,
    upload_avatar,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("media_root")]


# --- Fields and ownership -------------------------------------------------------------------


def test_anonymous_cannot_upload(api_client, media_root):
    response = post_upload(api_client, images.png_bytes(), purpose="avatar")

    assert response.status_code == 401
    assert StoredFile.objects.count() == 0
    assert stored_files(media_root) == []


@pytest.mark.parametrize(
    ("fields", "errors"),
    [
        ({"purpose": "banner"}, {"purpose": ['"banner" is not a valid choice.']}),
        ({}, {"purpose": ["This field is required."]}),
        (
            {"purpose": "session_image"},
            {"session_id": ["This field is required for a session image."]},
        ),
        (
            {"purpose": "avatar", "session_id": 1},
            {"session_id": ["Only session images belong to a session."]},
        ),
        (
            {"purpose": "session_image", "session_id": "abc"},
            {"session_id": ["A valid integer is required."]},
        ),
    ],
)
def test_invalid_fields_are_400(user_client, media_root, fields, errors):
    response = post_upload(user_client, images.png_bytes(), **fields)

    assert response.status_code == 400
    assert response.json()["errors"] == errors
    assert StoredFile.objects.count() == 0


def test_missing_file_is_400(user_client):
    response = user_client.post(UPLOAD_URL, {"purpose": "avatar"}, format="multipart")

    assert response.status_code == 400
    assert response.json()["errors"] == {"file": ["No file was submitted."]}


def test_image_for_someone_elses_session_is_404_and_changes_nothing(creator_client, media_root):
    other_session = SessionFactory(creator=CreatorFactory(), image="sessions/theirs.jpg")

    response = post_upload(
        creator_client, images.png_bytes(), purpose="session_image", session_id=other_session.pk
    )

    assert response.status_code == 404
    assert response.json() == {"detail": "Session not found.", "code": "not_found"}
    assert StoredFile.objects.count() == 0
    assert stored_files(media_root) == []
    other_session.refresh_from_db()
    assert other_session.image.name == "sessions/theirs.jpg"


def test_image_for_unknown_session_is_404(creator_client, media_root):
    response = post_upload(
        creator_client, images.png_bytes(), purpose="session_image", session_id=999_999
    )

    assert response.status_code == 404
    assert StoredFile.objects.count() == 0


# --- Replacing and deleting -----------------------------------------------------------------


def test_new_avatar_replaces_and_deletes_the_previous_one(
    user, user_client, media_root, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        first = upload_avatar(user_client)
    assert len(callbacks) == 0  # nothing to replace yet

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        second = upload_avatar(user_client, images.png_bytes())
    assert len(callbacks) == 1

    assert first != second
    assert stored_files(media_root) == [second]
    assert list(StoredFile.objects.values_list("key", flat=True)) == [second]
    user.refresh_from_db()
    assert user.avatar.name == second


def test_new_session_image_replaces_and_deletes_the_previous_one(
    creator, creator_client, media_root, django_capture_on_commit_callbacks
):
    session = SessionFactory(creator=creator)
    keys = []
    for source in (images.jpeg_bytes(), images.webp_bytes()):
        with django_capture_on_commit_callbacks(execute=True):
            response = post_upload(
                creator_client, source, purpose="session_image", session_id=session.pk
            )
        assert response.status_code == 201
        keys.append(response.json()["key"])

    assert stored_files(media_root) == [keys[1]]
    assert list(StoredFile.objects.values_list("key", flat=True)) == [keys[1]]
    session.refresh_from_db()
    assert session.image.name == keys[1]


def test_old_object_that_cannot_be_deleted_keeps_its_row_for_a_retry(
    user, user_client, media_root, django_capture_on_commit_callbacks
):
    first = upload_avatar(user_client)
    # A non-empty directory where the old object was: the storage refuses to delete it.
    (media_root / first).unlink()
    (media_root / first).mkdir()
    (media_root / first / "pinned").write_bytes(b"x")

    with django_capture_on_commit_callbacks(execute=True):
        second = upload_avatar(user_client, images.png_bytes())

    user.refresh_from_db()
    assert user.avatar.name == second
    assert sorted(StoredFile.objects.values_list("key", flat=True)) == sorted([first, second])
    # Once storage works again, the owner can delete the leftover.
    (media_root / first / "pinned").unlink()
    response = user_client.delete(DELETE_URL, {"key": first}, format="json")
    assert response.status_code == 204
    assert list(StoredFile.objects.values_list("key", flat=True)) == [second]
    assert stored_files(media_root) == [second]
    user.refresh_from_db()
    assert user.avatar.name == second


def test_replacing_an_avatar_not_uploaded_here_leaves_that_file_alone(
    user, user_client, media_root, django_capture_on_commit_callbacks
):
    # Set in the admin or by demo data: no StoredFile row, possibly shared, so not ours to delete.
    (media_root / "avatars").mkdir(parents=True)
    (media_root / "avatars" / "admin-set.png").write_bytes(images.png_bytes())
    User.objects.filter(pk=user.pk).update(avatar="avatars/admin-set.png")

    with django_capture_on_commit_callbacks(execute=True):
        key = upload_avatar(user_client)

    assert stored_files(media_root) == sorted(["avatars/admin-set.png", key])
    user.refresh_from_db()
    assert user.avatar.name == key


def test_owner_deletes_avatar(user, user_client, media_root):
    key = upload_avatar(user_client)

    response = user_client.delete(DELETE_URL, {"key": key}, format="json")

    assert response.status_code == 204
    assert stored_files(media_root) == []
    assert StoredFile.objects.count() == 0
    user.refresh_from_db()
    assert user.avatar.name == ""


def test_owner_deletes_session_image(creator, creator_client, media_root):
    session = SessionFactory(creator=creator)
    response = post_upload(
        creator_client, images.png_bytes(), purpose="session_image", session_id=session.pk
    )
    key = response.json()["key"]
    before = Session.objects.get(pk=session.pk).updated_at

    response = creator_client.delete(DELETE_URL, {"key": key}, format="json")

    assert response.status_code == 204
    assert stored_files(media_root) == []
    assert StoredFile.objects.count() == 0
    session.refresh_from_db()
    assert session.image.name == ""
    assert session.updated_at >= before


def test_someone_elses_key_is_404_and_nothing_is_deleted(user, user_client, media_root):
    key = upload_avatar(user_client)
    intruder = auth_client(UserFactory())

    response = intruder.delete(DELETE_URL, {"key": key}, format="json")

    assert response.status_code == 404
    assert response.json() == {"detail": "File not found.", "code": "not_found"}
    assert stored_files(media_root) == [key]
    assert list(StoredFile.objects.values_list("key", "owner")) == [(key, user.pk)]
    user.refresh_from_db()
    assert user.avatar.name == key


@pytest.mark.parametrize(
    ("body", "status", "expected"),
    [
        ({"key": "avatars/unknown.webp"}, 404, {"detail": "File not found.", "code": "not_found"}),
        ({}, 400, {"errors": {"key": ["This field is required."]}}),
        (
            {"key": "x" * 256},
            400,
            {"errors": {"key": ["Ensure this field has no more than 255 characters."]}},
        ),
    ],
)
def test_delete_with_unknown_or_missing_key(user_client, media_root, body, status, expected):
    response = user_client.delete(DELETE_URL, body, format="json")

    assert response.status_code == status
    assert {key: response.json()[key] for key in expected} == expected


def test_anonymous_cannot_delete(api_client, user_client, media_root):
    key = upload_avatar(user_client)

    response = api_client.delete(DELETE_URL, {"key": key}, format="json")

    assert response.status_code == 401
    assert stored_files(media_root) == [key]
    assert StoredFile.objects.count() == 1


def test_failed_database_write_deletes_the_stored_object(
    user, user_client, media_root, monkeypatch
):
    # Force the random key to collide with an existing row: the object is written, the row
    # insert fails on the unique key, and the object must not be left behind.
    fixed = uuid.UUID("12345678-1234-4234-8234-123456789abc")
    StoredFileFactory(key=f"avatars/{fixed}.webp")
    monkeypatch.setattr("backend.services.files.uuid.uuid4", lambda: fixed)

    response = post_upload(user_client, images.png_bytes(), purpose="avatar")

    assert response.status_code == 400
    assert stored_files(media_root) == []
    assert StoredFile.objects.count() == 1
    user.refresh_from_db()
    assert user.avatar.name == ""


# --- Schema ---------------------------------------------------------------------------------


def test_swagger_documents_the_multipart_upload(api_client):
    schema = api_client.get("/swagger.json").json()

    upload = schema["paths"]["/storage/upload/"]["post"]
    assert upload["consumes"] == ["multipart/form-data"]
    params = {p["name"]: p for p in upload["parameters"]}
    assert (params["file"]["in"], params["file"]["type"], params["file"]["required"]) == (
        "formData",
        "file",
        True,
    )
    assert params["purpose"]["enum"] == ["avatar", "session_image"]
    assert (params["session_id"]["type"], params["session_id"]["required"]) == ("integer", False)
    assert {"201", "400", "404", "413", "503"} <= set(upload["responses"])
    assert schema["definitions"]["StoredFileResult"]["properties"]["url"]["format"] == "uri"
    delete = schema["paths"]["/storage/delete/"]["delete"]
    assert delete["parameters"][0]["schema"] == {"$ref": "#/definitions/FileDeleteInput"}
    assert {"204", "404", "503"} <= set(delete["responses"])


# --- Concurrency ----------------------------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_avatar_uploads_leave_exactly_one_avatar(media_root):
    user = UserFactory()
    clients = [auth_client(user), auth_client(user)]
    uploads = [
        lambda client=client, source=source: post_upload(client, source, purpose="avatar")
        for client, source in zip(clients, (images.jpeg_bytes(), images.png_bytes()), strict=True)
    ]

    responses = run_concurrently(uploads, raise_errors=True)

    assert [response.status_code for response in responses] == [201, 201]
    user.refresh_from_db()
    # The second to take the user row lock replaced (and deleted) the first one's avatar.
    assert list(StoredFile.objects.values_list("key", flat=True)) == [user.avatar.name]
    assert stored_files(media_root) == [user.avatar.name]


def test_uploads_have_their_own_throttle(user_client, media_root, monkeypatch):
    # The rates dict is read when DRF is imported; patch the configured "uploads" entry.
    monkeypatch.setitem(ScopedRateThrottle.THROTTLE_RATES, "uploads", "2/minute")

    statuses = [
        post_upload(user_client, images.png_bytes(), purpose="avatar").status_code for _ in range(3)
    ]

    assert statuses == [201, 201, 429]
    assert StoredFile.objects.count() == 2
