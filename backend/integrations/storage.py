"""Object storage: S3 (or MinIO) through django-storages, or the local file system.

The only module that knows about boto3, botocore and django-storages. Everything else stores,
deletes and links objects through the three functions below, against Django's default storage
(the same object FileFields use), and sees one error: StorageUnavailable (503).

Which backend runs is decided by settings.STORAGES["default"]: MediaS3Storage when
AWS_STORAGE_BUCKET_NAME is set, FileSystemStorage under MEDIA_ROOT otherwise.
"""

import logging

from boto3.exceptions import Boto3Error
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from storages.backends.s3 import S3Storage

from backend.exceptions import StorageUnavailable
from backend.integrations.lock_guard import assert_no_row_locks

logger = logging.getLogger(__name__)

# Network, credential and S3 errors (botocore), transfer errors (boto3), and the local disk
# (full, read-only, permissions) for FileSystemStorage.
STORAGE_ERRORS = (BotoCoreError, ClientError, Boto3Error, OSError)


class MediaS3Storage(S3Storage):
    """S3Storage whose requests fail fast when the endpoint is down.

    botocore's defaults (60 s connect timeout, up to 5 legacy retries with growing backoff) would
    hold a web worker for a minute before the client got its 503. AWS_S3_CLIENT_CONFIG, when a
    deployment sets one, still wins.
    """

    def get_default_settings(self):
        defaults = super().get_default_settings()
        if defaults["client_config"] is None:
            timeout = settings.AWS_S3_TIMEOUT_SECONDS
            defaults["client_config"] = Config(
                s3={"addressing_style": defaults["addressing_style"]},
                signature_version=defaults["signature_version"],
                proxies=defaults["proxies"],
                connect_timeout=timeout,
                read_timeout=timeout,
                retries={"mode": "standard", "max_attempts": settings.AWS_S3_MAX_ATTEMPTS},
            )
        return defaults


def _unavailable(action: str, key: str, error: Exception) -> StorageUnavailable:
    logger.warning("storage %s failed for %s: %s: %s", action, key, type(error).__name__, error)
    return StorageUnavailable("File storage is unavailable; please retry in a moment.")


def save_object(*, key: str, content: bytes, content_type: str) -> str:
    """Writes `content` under `key` with `content_type`; returns the key actually used.

    The storage may pick another name if `key` exists (AWS_S3_FILE_OVERWRITE=False and
    FileSystemStorage never overwrite); callers use random keys, so it is the same in practice.
    """
    assert_no_row_locks("storage save")
    file = ContentFile(content, name=key)
    # S3Storage sends this as the object's Content-Type (instead of guessing from the name).
    file.content_type = content_type  # type: ignore[attr-defined]  # an attribute S3Storage reads
    try:
        return default_storage.save(key, file)
    except STORAGE_ERRORS as error:
        raise _unavailable("save", key, error) from error


def delete_object(*, key: str) -> None:
    """Deletes the object; deleting a missing object is not an error (both backends)."""
    assert_no_row_locks("storage delete")
    try:
        default_storage.delete(key)
    except STORAGE_ERRORS as error:
        raise _unavailable("delete", key, error) from error


def object_url(*, key: str) -> str:
    """A URL a browser can load: presigned with an expiry for a private bucket, or under
    AWS_S3_CUSTOM_DOMAIN, or MEDIA_URL for the file system. No request to the storage."""
    try:
        return default_storage.url(key)
    except STORAGE_ERRORS as error:
        raise _unavailable("url", key, error) from error
