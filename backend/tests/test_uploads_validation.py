"""Uploads on file system storage: which images are accepted (re-encoded) and which refused."""

import re

import pytest

from backend.models import StoredFile
from backend.tests import images
from backend.tests.factories import SessionFactory
from backend.tests.support.uploads import UPLOAD_URL, post_upload, stored_files, upload_avatar

UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"
AVATAR_KEY = re.compile(rf"^avatars/{UUID}\.webp$")

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("media_root")]


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
