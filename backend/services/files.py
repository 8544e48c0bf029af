"""Uploads: avatars and session images, validated, re-encoded, owned and deletable.

An accepted upload is an image that Pillow decodes as JPEG, PNG or WebP (the bytes decide, not
the file name or the declared content type), of sane dimensions, re-encoded from its pixels
only: EXIF (GPS), comments, ICC/XMP chunks and anything appended after the image data (a zip, an
HTML page) never reach storage. Objects get random keys, so a name can never be guessed, reused
or made to overwrite someone else's object.

Every object in storage has a StoredFile row naming its owner. The object is written first and
the row second; when the row cannot be written the object is deleted again, and when storage is
down nothing is written at all (StorageUnavailable, 503).
"""

import io
import logging
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone
from PIL import Image, ImageOps, UnidentifiedImageError

from backend import catalog_cache
from backend.errors import ErrorCode
from backend.exceptions import (
    DomainError,
    NotFound,
    PayloadTooLarge,
    StorageUnavailable,
    ValidationFailed,
)
from backend.integrations.storage import delete_object, save_object
from backend.models import Session, StoredFile, User

logger = logging.getLogger(__name__)

Purpose = StoredFile.Purpose

# Pillow plugins allowed to decode an upload. MPO is how Pillow names the multi-picture JPEGs
# many phones write; it is opened by the JPEG plugin.
DECODE_FORMATS = ("JPEG", "PNG", "WEBP")
JPEG_FORMATS = {"JPEG", "MPO"}
# No camera or screen produces a side longer than this; a longer one is a decompression bomb
# or a mistake.
MAX_SIDE_PX = 10_000
# Pixels actually decoded (after JPEG's cheap downscaled decoding): bounds the memory one
# upload can take, about 100 MB as RGBA.
MAX_DECODED_PIXELS = 25_000_000
# Multipart boundaries, headers and the small form fields around the file.
MULTIPART_OVERHEAD_BYTES = 64 * 1024


class UploadsBusy(DomainError):
    """Every decode slot of this process stayed taken for UPLOAD_DECODE_WAIT_SECONDS (503)."""

    status_code = 503
    default_code = ErrorCode.UPLOADS_BUSY


@dataclass(frozen=True)
class Rendition:
    """What an accepted image is re-encoded to, per purpose."""

    pillow_format: str
    extension: str
    content_type: str
    max_side: int
    keeps_alpha: bool


RENDITIONS: dict[str, Rendition] = {
    Purpose.AVATAR: Rendition("WEBP", "webp", "image/webp", max_side=512, keeps_alpha=True),
    Purpose.SESSION_IMAGE: Rendition("JPEG", "jpg", "image/jpeg", max_side=2048, keeps_alpha=False),
}


def upload_max_bytes() -> int:
    return settings.UPLOAD_MAX_MB * 1024 * 1024


def upload_max_request_bytes() -> int:
    """The largest request body worth parsing: the file limit plus multipart overhead."""
    return upload_max_bytes() + MULTIPART_OVERHEAD_BYTES


def too_large_error() -> PayloadTooLarge:
    return PayloadTooLarge(f"The file is larger than {settings.UPLOAD_MAX_MB} MB.")


def _read_limited(upload: UploadedFile) -> bytes:
    """The upload's bytes, refusing oversize files from the size Django counted while
    receiving them, before reading them into memory."""
    limit = upload_max_bytes()
    if upload.size is not None and upload.size > limit:
        raise too_large_error()
    upload.seek(0)
    data = upload.read(limit + 1)
    if len(data) > limit:
        raise too_large_error()
    if not data:
        raise ValidationFailed("The file is empty.", code="empty_file")
    return data


def _has_alpha(image: Image.Image) -> bool:
    return image.mode in {"RGBA", "LA", "PA", "RGBa", "La"} or "transparency" in image.info


# --- Memory: what decoding an image costs, known from its header -----------------------------
#
# A 1 KB lossless WebP can declare 5000x5000 pixels; decoding it took a worker from 140 to 608 MB.
# So the memory a decode needs is estimated from the header (size, mode, format) before any pixel
# is decoded, and at most UPLOAD_DECODE_CONCURRENCY decodes run at once per process. Costs are
# bytes per decoded pixel, measured (backend/tests/test_image_limits.py keeps a process doing one
# worst-case upload under 150 MB of peak RSS):
# - Pillow keeps 1, L and P at 1 byte per pixel, I;16 at 2 and everything else at 4;
# - modes Pillow cannot resample well (1, P, I;16, ...) are converted to RGB(A) first (+4);
# - resampling with alpha works on a premultiplied copy (+4);
# - Pillow's WebP decoder holds libwebp's two canvases and a copy of the frame (+12).
MAX_DECODE_BYTES = 48 * 1024 * 1024
RESAMPLED_AS_IS = frozenset({"L", "LA", "RGB", "RGBA", "CMYK", "YCbCr", "I", "F"})
WEBP_DECODER_BYTES_PER_PIXEL = 12

_decode_slots: threading.BoundedSemaphore | None = None
_decode_slots_lock = threading.Lock()


def _stored_bytes_per_pixel(mode: str) -> int:
    if mode in {"1", "L", "P"}:
        return 1
    if mode.startswith("I;16"):
        return 2
    return 4


def decode_bytes_per_pixel(*, image_format: str, mode: str, has_alpha: bool) -> int:
    """The decode's working memory per pixel, from what the header says (see above)."""
    cost = _stored_bytes_per_pixel(mode)
    if mode not in RESAMPLED_AS_IS:
        cost += 4
    if has_alpha:
        cost += 4
    if image_format == "WEBP":
        cost += WEBP_DECODER_BYTES_PER_PIXEL
    return cost


def _webp_header(data: bytes) -> tuple[int, int, bool] | None:
    """Width, height and alpha from a WebP's first chunk header (RFC 9649), without decoding.

    Pillow allocates the decoder's canvases as soon as a WebP is opened, so its size is checked
    before Image.open."""
    if len(data) < 30 or data[:4] != b"RIFF" or data[8:12] != b"WEBP":
        return None
    chunk = data[12:16]
    if chunk == b"VP8 " and data[23:26] == b"\x9d\x01\x2a":
        width = int.from_bytes(data[26:28], "little") & 0x3FFF
        height = int.from_bytes(data[28:30], "little") & 0x3FFF
        return width, height, False
    if chunk == b"VP8L" and data[20] == 0x2F:
        bits = int.from_bytes(data[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1, bool(bits >> 28 & 1)
    if chunk == b"VP8X":
        width = int.from_bytes(data[24:27], "little") + 1
        height = int.from_bytes(data[27:30], "little") + 1
        return width, height, bool(data[20] & 0x10)
    return None


def _too_much_memory(width: int, height: int, image_format: str) -> ValidationFailed:
    return ValidationFailed(
        f"The image is {width}x{height} pixels, too large to process as {image_format}; "
        "upload a smaller one (or a JPEG).",
        code="image_too_large",
    )


def _jpeg_draft_size(
    *, width: int, height: int, max_side: int, bytes_per_pixel: int
) -> tuple[int, int]:
    """The size to ask JPEG's scaled decoding (1/1, 1/2, 1/4 or 1/8) for: the most reduction
    whose longer side still covers `max_side`, or more when that would not fit in
    MAX_DECODE_BYTES (a huge photo then comes out a little smaller than `max_side`)."""
    covering = [scale for scale in (1, 2, 4, 8) if max(width, height) // scale >= max_side]
    preferred = max(covering, default=1)
    for scale in (1, 2, 4, 8):
        fits = (width // scale) * (height // scale) * bytes_per_pixel <= MAX_DECODE_BYTES
        if scale >= preferred and (fits or scale == 8):
            return max(width // scale, 1), max(height // scale, 1)
    raise AssertionError("unreachable: scale 8 always returns")


@contextmanager
def decode_slot() -> Iterator[None]:
    """One of the process's UPLOAD_DECODE_CONCURRENCY decode slots; 503 after waiting
    UPLOAD_DECODE_WAIT_SECONDS for one. gthread workers serve several requests per process, and
    each decode may take up to MAX_DECODE_BYTES: their number is what bounds the process."""
    global _decode_slots
    with _decode_slots_lock:
        if _decode_slots is None:
            _decode_slots = threading.BoundedSemaphore(settings.UPLOAD_DECODE_CONCURRENCY)
        slots = _decode_slots
    if not slots.acquire(timeout=settings.UPLOAD_DECODE_WAIT_SECONDS):
        raise UploadsBusy(
            "Too many images are being processed right now; please retry.", code="uploads_busy"
        )
    try:
        yield
    finally:
        slots.release()


def _to_output_mode(image: Image.Image, rendition: Rendition) -> Image.Image:
    if _has_alpha(image):
        rgba = image.convert("RGBA")
        if rendition.keeps_alpha:
            return rgba
        # JPEG has no alpha: transparent areas become white, not black.
        background = Image.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    return image.convert("RGB")


def image_reencode(*, data: bytes, rendition: Rendition) -> bytes:
    """Decodes `data` as JPEG/PNG/WebP and returns it re-encoded per `rendition`.

    Raises ValidationFailed (400) for anything else: not an image, another format (SVG, GIF,
    HTML), truncated data, a decompression bomb, absurd dimensions, or more pixels than fit in
    MAX_DECODE_BYTES (known from the header, before decoding); UploadsBusy (503) when no decode
    slot frees up in time.
    """
    webp = _webp_header(data)
    if webp is not None:
        width, height, has_alpha = webp
        cost = decode_bytes_per_pixel(
            image_format="WEBP", mode="RGBA" if has_alpha else "RGB", has_alpha=has_alpha
        )
        if width * height * cost > MAX_DECODE_BYTES:
            raise _too_much_memory(width, height, "WEBP")
    with decode_slot():
        return _reencode(data=data, rendition=rendition)


def _reencode(*, data: bytes, rendition: Rendition) -> bytes:
    not_an_image = ValidationFailed("Upload a JPEG, PNG or WebP image.", code="invalid_image")
    too_many_pixels = ValidationFailed("The image has too many pixels.", code="image_too_large")
    try:
        # Pillow raises DecompressionBombError here beyond twice Image.MAX_IMAGE_PIXELS, from
        # the header alone; below that it only warns, so the limits are checked again below.
        with Image.open(io.BytesIO(data), formats=DECODE_FORMATS) as image:
            width, height = image.size
            if width > MAX_SIDE_PX or height > MAX_SIDE_PX:
                raise ValidationFailed(
                    f"The image is {width}x{height} pixels; at most "
                    f"{MAX_SIDE_PX}x{MAX_SIDE_PX} is accepted.",
                    code="image_too_large",
                )
            if Image.MAX_IMAGE_PIXELS is not None and width * height > Image.MAX_IMAGE_PIXELS:
                raise too_many_pixels
            image_format = "JPEG" if image.format in JPEG_FORMATS else str(image.format)
            cost = decode_bytes_per_pixel(
                image_format=image_format, mode=image.mode, has_alpha=_has_alpha(image)
            )
            if image.format in JPEG_FORMATS:
                # Decode a JPEG at 1/2, 1/4 or 1/8 scale when that still covers the output.
                image.draft(
                    None,
                    _jpeg_draft_size(
                        width=width,
                        height=height,
                        max_side=rendition.max_side,
                        bytes_per_pixel=cost,
                    ),
                )
            if image.width * image.height > MAX_DECODED_PIXELS:
                raise ValidationFailed(
                    f"The image has more than {MAX_DECODED_PIXELS:,} pixels.",
                    code="image_too_large",
                )
            if image.width * image.height * cost > MAX_DECODE_BYTES:
                raise _too_much_memory(image.width, image.height, image_format)
            image.load()
            # Shrink first, while the full-size pixels are the only big buffer: orientation and
            # output mode are then applied to the small image, not to full-size copies.
            if image.mode not in RESAMPLED_AS_IS:
                # The converted copy stands in for the opened file from here on.
                image = image.convert("RGBA" if _has_alpha(image) else "RGB")  # type: ignore[assignment]
            image.thumbnail((rendition.max_side, rendition.max_side), Image.Resampling.LANCZOS)
            # Apply the camera's orientation before the EXIF that carries it is dropped.
            oriented = ImageOps.exif_transpose(image)
            clean = _to_output_mode(oriented, rendition)
    except Image.DecompressionBombError as error:
        raise too_many_pixels from error
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError) as error:
        # UnidentifiedImageError: not one of DECODE_FORMATS; the others: corrupt or truncated
        # data found while decoding.
        raise not_an_image from error

    # Only pixels go out: no EXIF, comment, ICC profile, XMP or text chunks are carried over
    # from the source (Pillow would write some of them, e.g. a JPEG comment, from `info`).
    clean.info = {}
    output = io.BytesIO()
    if rendition.pillow_format == "JPEG":
        clean.save(output, "JPEG", quality=85, optimize=True, progressive=True)
    else:
        clean.save(output, rendition.pillow_format, quality=85, method=4)
    return output.getvalue()


def _new_key(*, rendition: Rendition, purpose: str, session_id: int | None) -> str:
    if purpose == Purpose.SESSION_IMAGE:
        return f"sessions/{session_id}/{uuid.uuid4()}.{rendition.extension}"
    return f"avatars/{uuid.uuid4()}.{rendition.extension}"


def _delete_quietly(key: str) -> None:
    try:
        delete_object(key=key)
    except StorageUnavailable:
        logger.error("orphaned object %s left in storage (no StoredFile row)", key)


def _discard_replaced(*, owner_id: int, key: str) -> None:
    """After the replacement committed: delete the previous object, then its row.

    Only objects this API stored for the same owner are deleted (a key set by hand in the admin
    or by demo data may be shared). If storage fails the row stays, so the owner (DELETE
    /api/storage/delete/) or a clean-up can finish the job.
    """
    if not StoredFile.objects.filter(owner_id=owner_id, key=key).exists():
        return
    try:
        delete_object(key=key)
    except StorageUnavailable:
        logger.warning("replaced object %s not deleted; its StoredFile row is kept", key)
        return
    StoredFile.objects.filter(owner_id=owner_id, key=key).delete()


def _record_avatar(*, owner: User, stored: StoredFile) -> str:
    # The user row lock orders concurrent avatar uploads: each replaces the one before it.
    locked = User.objects.select_for_update().get(pk=owner.pk)
    previous = locked.avatar.name
    stored.save()
    User.objects.filter(pk=owner.pk).update(avatar=stored.key)
    catalog_cache.creators_changed()  # catalog entries show the creator's avatar
    owner.avatar = stored.key
    return previous


def _record_session_image(*, owner: User, stored: StoredFile) -> str:
    if stored.session_id is None:
        raise NotFound("Session not found.")
    # Locked and checked again: the session may have changed hands or gone since the pre-check.
    session = (
        Session.objects.select_for_update().filter(pk=stored.session_id, creator=owner).first()
    )
    if session is None:
        raise NotFound("Session not found.")
    previous = session.image.name
    stored.save()
    Session.objects.filter(pk=session.pk).update(image=stored.key, updated_at=timezone.now())
    catalog_cache.catalog_changed(session_id=session.pk)
    return previous


def file_upload(
    *, owner: User, purpose: str, upload: UploadedFile, session_id: int | None = None
) -> StoredFile:
    """Validates, re-encodes and stores an image, and makes it the owner's avatar or the
    session's image, replacing (and deleting) the previous one.

    Call it outside any transaction: the object is written to storage before the database
    rows, and an outer rollback would leave that object behind.
    """
    rendition = RENDITIONS.get(purpose)
    if rendition is None:
        raise ValidationFailed(
            "purpose must be 'avatar' or 'session_image'.", code="invalid_purpose"
        )
    if purpose == Purpose.SESSION_IMAGE:
        if session_id is None:
            raise ValidationFailed(
                "session_id is required for a session image.", code="session_required"
            )
        # Before decoding anything: someone else's session is a 404, as if it did not exist.
        if not Session.objects.filter(pk=session_id, creator=owner).exists():
            raise NotFound("Session not found.")
    elif session_id is not None:
        raise ValidationFailed(
            "session_id applies only to session images.", code="session_not_allowed"
        )

    content = image_reencode(data=_read_limited(upload), rendition=rendition)
    key = save_object(
        key=_new_key(rendition=rendition, purpose=purpose, session_id=session_id),
        content=content,
        content_type=rendition.content_type,
    )
    stored = StoredFile(
        owner=owner,
        key=key,
        purpose=purpose,
        session_id=session_id if purpose == Purpose.SESSION_IMAGE else None,
        size=len(content),
        content_type=rendition.content_type,
    )
    try:
        with transaction.atomic():
            if purpose == Purpose.AVATAR:
                previous = _record_avatar(owner=owner, stored=stored)
            else:
                previous = _record_session_image(owner=owner, stored=stored)
            if previous and previous != key:
                # robust: callbacks run when the atomic block exits, still inside this try; a
                # failure there must be logged, not undo an upload that has committed.
                transaction.on_commit(
                    lambda: _discard_replaced(owner_id=owner.pk, key=previous), robust=True
                )
    except BaseException:
        # No row, no object: the upload left nothing behind.
        _delete_quietly(key)
        raise
    return stored


def file_delete(*, owner: User, key: str) -> None:
    """Deletes one of the owner's objects and clears the avatar or session image using it.

    Someone else's key, or an unknown one, is a 404 and changes nothing. The object goes first:
    when storage is down (503) the row and the reference stay as they were, and a retry works
    (deleting a missing object is not an error).
    """
    if not StoredFile.objects.filter(owner=owner, key=key).exists():
        raise NotFound("File not found.")
    delete_object(key=key)
    with transaction.atomic():
        User.objects.filter(pk=owner.pk, avatar=key).update(avatar="")
        Session.objects.filter(creator=owner, image=key).update(image="", updated_at=timezone.now())
        StoredFile.objects.filter(owner=owner, key=key).delete()
        catalog_cache.creators_changed()  # an avatar or a session image may be gone
    if owner.avatar.name == key:
        owner.avatar = ""


def files_delete_orphans(*, older_than: timedelta, limit: int = 500) -> int:
    """Deletes stored objects that no avatar or session image uses, and their rows.

    They are left behind when deleting a replaced object failed (storage down) or when a
    session was deleted. `older_than` keeps an upload whose row is being written right now
    out of reach. Storage is called outside any transaction (no lock held); a failure leaves
    the row for the next run. Returns how many were deleted.
    """
    cutoff = timezone.now() - older_than
    used_as_avatar = User.objects.filter(avatar=OuterRef("key"))
    used_as_image = Session.objects.filter(image=OuterRef("key"))
    orphans = (
        StoredFile.objects.filter(created_at__lt=cutoff)
        .exclude(Exists(used_as_avatar))
        .exclude(Exists(used_as_image))
        .values_list("pk", "key")[:limit]
    )
    deleted = 0
    for pk, key in list(orphans):
        try:
            delete_object(key=key)
        except StorageUnavailable:
            logger.warning("orphaned object %s not deleted; retried on the next run", key)
            break
        StoredFile.objects.filter(pk=pk).delete()
        deleted += 1
    return deleted
