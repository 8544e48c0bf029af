"""Helpers shared by the upload tests on file system storage (test_uploads_*.py).

Their MEDIA_ROOT comes from the `media_root` fixture in the plugin; the same service runs
against S3 in test_uploads_s3.py.
"""

from backend.tests import images

UPLOAD_URL = "/api/storage/upload/"
DELETE_URL = "/api/storage/delete/"


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
