"""Uploads on the embedded default, file system storage under a temporary MEDIA_ROOT.

The same service runs against S3 in test_uploads_s3.py; the validation cases live here.
"""

import re
import uuid

import pytest
from rest_framework.throttling import ScopedRateThrottle

from backend.models import Session, StoredFile, User
from backend.tests import images
from backend.tests.factories import CreatorFactory, SessionFactory, StoredFileFactory, UserFactory
from backend.tests.support import auth_client, run_concurrently

UPLOAD_URL = "/api/storage/upload/"
DELETE_URL = "/api/storage/delete/"
UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"
AVATAR_KEY = re.compile(rf"^avatars/{UUID}\.webp$")

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    # Explicit, whatever the environment says: changing STORAGES also resets default_storage,
    # the object every FileField holds.
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    }
    return settings.MEDIA_ROOT


def stored_files(media_root) -> list[str]:
    if not media_root.exists():
        return []
    return sorted(str(p.relative_to(media_root)) for p in media_root.rglob("*") if p.is_file())


def post_upload(client, data: bytes, *, name="picture.png", content_type="image/png", **fields):
    payload = {"file": images.upload(data, name, content_type), **fields}
    return client.post(UPLOAD_URL, payload, format="multipart")


def upload_avatar(client, data=None):
    response = post_upload(client, data or images.jpeg_bytes(), purpose="avatar")
    assert response.status_code == 201, response.json()
    return response.json()["key"]


# --- Accepted images ------------------------------------------------------------------------


def test_avatar_jpeg_is_reencoded_to_webp_without_metadata(user, user_client, media_root):
    source = images.jpeg_bytes(gps=True, orientation=6, comment=images.HTML_PAYLOAD)
    assert images.opened(source).getexif().get_ifd(images.GPS_IFD) == images.GPS_TAGS

    response = post_upload(user_client, source, name="me.jpg", purpose="avatar")

    assert response.status_code == 201
    body = response.json()
    assert set(body) == {"key", "url"}
    key = body["key"]
    assert AVATAR_KEY.match(key)
    assert body["url"] == f"http://testserver/media/{key}"
    assert stored_files(media_root) == [key]
    content = (media_root / key).read_bytes()
    image = images.opened(content)
    assert image.format == "WEBP"
    # Orientation 6 (rotate 90°) applied to the pixels, then dropped with the rest of EXIF.
    assert image.size == (48, 64)
    assert dict(image.getexif()) == {}
    assert b"Exif" not in content
    assert b"script" not in content
    stored = StoredFile.objects.get()
    assert (stored.owner, stored.key, stored.purpose, stored.session) == (
        user,
        key,
        "avatar",
        None,
    )
    assert (stored.size, stored.content_type) == (len(content), "image/webp")
    user.refresh_from_db()
    assert user.avatar.name == key
    assert user.avatar_link == f"/media/{key}"


@pytest.mark.parametrize(
    ("source", "name", "declared"),
    [
        (images.jpeg_bytes(gps=True), "photo.jpg", "image/jpeg"),
        (images.png_bytes(gps=True), "photo.png", "image/png"),
        (images.webp_bytes(gps=True), "photo.webp", "image/webp"),
        # The content decides: a PNG named and declared as a JPEG is a PNG.
        (images.png_bytes(), "photo.jpg", "image/jpeg"),
    ],
)
def test_session_image_of_each_format_is_stored_as_clean_jpeg(
    creator, creator_client, media_root, source, name, declared
):
    session = SessionFactory(creator=creator)

    response = post_upload(
        creator_client,
        source,
        name=name,
        content_type=declared,
        purpose="session_image",
        session_id=session.pk,
    )

    assert response.status_code == 201
    key = response.json()["key"]
    assert re.match(rf"^sessions/{session.pk}/{UUID}\.jpg$", key)
    content = (media_root / key).read_bytes()
    image = images.opened(content)
    assert (image.format, image.mode) == ("JPEG", "RGB")
    assert dict(image.getexif()) == {}
    stored = StoredFile.objects.get()
    assert (stored.owner, stored.purpose, stored.session, stored.content_type) == (
        creator,
        "session_image",
        session,
        "image/jpeg",
    )
    assert stored.size == len(content)
    session.refresh_from_db()
    assert session.image.name == key


def test_session_image_drops_jpeg_comment_and_exif(creator, creator_client, media_root):
    # Pillow copies a JPEG's comment into the next JPEG it saves unless told otherwise.
    source = images.jpeg_bytes(gps=True, comment=images.HTML_PAYLOAD)
    session = SessionFactory(creator=creator)

    response = post_upload(
        creator_client, source, name="a.jpg", purpose="session_image", session_id=session.pk
    )

    assert response.status_code == 201
    content = (media_root / response.json()["key"]).read_bytes()
    image = images.opened(content)
    assert "comment" not in image.info
    assert "exif" not in image.info
    assert b"script" not in content


def test_avatar_keeps_transparency_and_large_images_are_scaled_down(user_client, media_root):
    key = upload_avatar(user_client, images.png_bytes(size=(3000, 1000), mode="RGBA"))

    image = images.opened((media_root / key).read_bytes())
    assert (image.format, image.mode, image.size) == ("WEBP", "RGBA", (512, 171))


def test_valid_png_with_html_or_zip_appended_is_stored_without_the_payload(user_client, media_root):
    zip_payload = b"PK\x03\x04" + b"\x00" * 26 + b"evil.jsp<% exec %>"
    for payload in (images.HTML_PAYLOAD, zip_payload):
        key = upload_avatar(user_client, images.png_bytes() + payload)

        content = (media_root / key).read_bytes()
        assert payload not in content
        assert b"PK\x03\x04" not in content
        assert b"<html" not in content
        assert content.startswith(b"RIFF")
        assert content[8:12] == b"WEBP"


# --- Refused files --------------------------------------------------------------------------

valid_png = images.png_bytes()


@pytest.mark.parametrize(
    ("data", "name", "declared"),
    [
        (b"just some text, not an image\n", "notes.png", "image/png"),
        (images.SVG, "logo.svg", "image/svg+xml"),
        (images.SVG, "logo.png", "image/png"),
        (images.HTML_PAYLOAD, "page.png", "image/png"),
        # PNG signature, then HTML: sniffers call it a PNG, no decoder does.
        (b"\x89PNG\r\n\x1a\n" + images.HTML_PAYLOAD, "polyglot.png", "image/png"),
        # GIFAR-style: a real GIF with a zip appended, renamed .png.
        (images.gif_bytes() + b"PK\x03\x04payload", "polyglot.png", "image/png"),
        (images.gif_bytes(), "anim.gif", "image/gif"),
        (valid_png[: len(valid_png) // 2], "truncated.png", "image/png"),
        (b"\xff\xd8\xff\xe0" + b"\x00" * 64, "broken.jpg", "image/jpeg"),
    ],
    ids=[
        "text",
        "svg",
        "svg-renamed-png",
        "html-renamed-png",
        "png-magic-then-html",
        "gif-zip-polyglot",
        "gif",
        "truncated-png",
        "jpeg-magic-only",
    ],
)
def test_anything_but_a_decodable_jpeg_png_or_webp_is_refused(
    user, user_client, media_root, data, name, declared
):
    response = post_upload(user_client, data, name=name, content_type=declared, purpose="avatar")

    assert response.status_code == 400
    assert response.json() == {
        "detail": "Upload a JPEG, PNG or WebP image.",
        "code": "invalid_image",
    }
    assert StoredFile.objects.count() == 0
    assert stored_files(media_root) == []
    user.refresh_from_db()
    assert user.avatar.name == ""


def test_empty_file_is_refused(user_client, media_root):
    response = post_upload(user_client, b"", purpose="avatar")

    assert response.status_code == 400
    assert response.json()["errors"] == {"file": ["The submitted file is empty."]}
    assert StoredFile.objects.count() == 0


def test_decompression_bomb_png_is_refused(user, user_client, media_root):
    bomb = images.huge_png_bytes(20_000, 20_000)
    assert len(bomb) < 64 * 1024  # 400 million pixels in a few tens of KB

    response = post_upload(user_client, bomb, purpose="avatar")

    assert response.status_code == 400
    assert response.json() == {
        "detail": "The image has too many pixels.",
        "code": "image_too_large",
    }
    assert StoredFile.objects.count() == 0
    assert stored_files(media_root) == []


@pytest.mark.parametrize(
    ("size", "detail"),
    [
        ((12_000, 10), "The image is 12000x10 pixels; at most 10000x10000 is accepted."),
        ((6_000, 5_000), "The image has more than 25,000,000 pixels."),
    ],
)
def test_absurd_dimensions_below_pillows_own_limit_are_refused(
    user_client, media_root, size, detail
):
    response = post_upload(user_client, images.huge_png_bytes(*size), purpose="avatar")

    assert response.status_code == 400
    assert response.json() == {"detail": detail, "code": "image_too_large"}
    assert StoredFile.objects.count() == 0


def test_file_over_the_default_5_mb_is_refused_with_413(user, user_client, media_root):
    too_big = images.png_bytes() + b"\x00" * (5 * 1024 * 1024)

    response = post_upload(user_client, too_big, purpose="avatar")

    assert response.status_code == 413
    assert response.json() == {"detail": "The file is larger than 5 MB.", "code": "too_large"}
    assert StoredFile.objects.count() == 0
    assert stored_files(media_root) == []
    user.refresh_from_db()
    assert user.avatar.name == ""


def test_upload_limit_is_configurable(settings, user_client, media_root):
    settings.UPLOAD_MAX_MB = 1
    just_over = images.png_bytes() + b"\x00" * (1024 * 1024)

    response = post_upload(user_client, just_over, purpose="avatar")

    assert response.status_code == 413
    assert response.json() == {"detail": "The file is larger than 1 MB.", "code": "too_large"}


def test_oversize_body_is_refused_from_content_length_without_reading_it(user_client, media_root):
    # The body is small but announced as 50 MB: reading it would fail in the test client
    # (FakePayload refuses to read past its end), so a 413 proves it was never read.
    payload = {"file": images.upload(images.png_bytes()), "purpose": "avatar"}
    response = user_client.post(
        UPLOAD_URL, payload, format="multipart", CONTENT_LENGTH=str(50 * 1024 * 1024)
    )

    assert response.status_code == 413
    assert response.json()["code"] == "too_large"
    assert StoredFile.objects.count() == 0


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
