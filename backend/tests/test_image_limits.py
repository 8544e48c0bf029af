"""Image decoding within bounds: pixels are bounded from the header before decoding, decodes are
limited per process, and one upload of the worst accepted image stays under 150 MB of RSS."""

import io
import json
import math
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from PIL import Image

from backend.models import StoredFile
from backend.services import files
from backend.services.files import (
    MAX_DECODE_BYTES,
    RENDITIONS,
    decode_bytes_per_pixel,
    image_reencode,
)
from backend.tests import images
from backend.tests.test_deploy import REPO

UPLOAD_URL = "/api/storage/upload/"
PEAK_RSS_PER_UPLOAD_MB = 150


def encode(image: Image.Image, fmt: str, **params) -> bytes:
    output = io.BytesIO()
    image.save(output, fmt, **params)
    return output.getvalue()


def lossless_webp(width: int, height: int, mode: str = "RGB") -> bytes:
    color = (10, 20, 30, 40)[: len(mode)]
    return encode(Image.new(mode, (width, height), color), "WEBP", lossless=True)


def largest_side(*, image_format: str, mode: str, has_alpha: bool) -> int:
    """The side of the largest square image of that kind that fits MAX_DECODE_BYTES."""
    cost = decode_bytes_per_pixel(image_format=image_format, mode=mode, has_alpha=has_alpha)
    return math.isqrt(MAX_DECODE_BYTES // cost)


def post_upload(client, data: bytes, **fields):
    return client.post(
        UPLOAD_URL, {"file": images.upload(data, "picture.bin"), **fields}, format="multipart"
    )


@pytest.fixture
def fresh_decode_slots(monkeypatch):
    # Slots are created once per process from the settings; each test gets its own.
    monkeypatch.setattr(files, "_decode_slots", None)


# --- Bounded from the header, before decoding ---------------------------------------------------


def test_a_1_kb_lossless_5000x5000_webp_is_refused_without_decoding(
    user, user_client, media_root, monkeypatch
):
    bomb = lossless_webp(5000, 5000)
    assert len(bomb) < 2048
    opened = []
    monkeypatch.setattr(files.Image, "open", lambda *a, **k: opened.append(a) or 1 / 0)

    response = post_upload(user_client, bomb, purpose="avatar")

    assert response.status_code == 400
    assert response.json() == {
        "detail": "The image is 5000x5000 pixels, too large to process as WEBP; "
        "upload a smaller one (or a JPEG).",
        "code": "image_too_large",
    }
    # Refused from the RIFF header alone: Pillow never opened it (opening allocates).
    assert opened == []
    assert StoredFile.objects.count() == 0


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (lossless_webp(300, 200), (300, 200, False)),
        (lossless_webp(300, 200, "RGBA"), (300, 200, True)),
        (encode(Image.new("RGB", (640, 480)), "WEBP", quality=80), (640, 480, False)),
        (encode(Image.new("RGBA", (64, 16), (1, 2, 3, 4)), "WEBP", quality=80), (64, 16, True)),
        (images.webp_bytes((50, 20), gps=True), (50, 20, False)),  # VP8X: with EXIF
    ],
)
def test_webp_header_gives_size_and_alpha(data, expected):
    assert files._webp_header(data) == expected


@pytest.mark.parametrize(
    ("fmt", "mode", "has_alpha"),
    [("PNG", "RGB", False), ("PNG", "RGBA", True), ("PNG", "P", False), ("WEBP", "RGB", False)],
)
def test_the_largest_image_that_fits_is_accepted_and_one_pixel_more_is_not(fmt, mode, has_alpha):
    side = largest_side(image_format=fmt, mode=mode, has_alpha=has_alpha)
    color = (1, 2, 3, 4)[: len(mode)] if mode != "P" else 1

    def image_of(width: int) -> bytes:
        params = {"lossless": True} if fmt == "WEBP" else {}
        return encode(Image.new(mode, (width, side), color), fmt, **params)

    accepted = image_reencode(data=image_of(side), rendition=RENDITIONS["avatar"])
    assert Image.open(io.BytesIO(accepted)).size == (512, 512)
    # One more column is over the budget (a square of side+1 would be far over).
    wider = side + math.ceil(side / 100)
    with pytest.raises(files.ValidationFailed) as refused:
        image_reencode(data=image_of(wider), rendition=RENDITIONS["avatar"])
    assert refused.value.code == "image_too_large"
    assert f"{wider}x{side} pixels, too large to process as {fmt}" in refused.value.message


def test_a_huge_jpeg_is_decoded_scaled_down_within_the_budget():
    # 8000x6000 at full size is 192 MB of pixels; JPEG's 1/2 scale (4000x3000) fits and still
    # covers a 2048-pixel session image.
    photo = encode(Image.new("RGB", (8000, 6000), (200, 30, 30)), "JPEG", quality=50)
    result = image_reencode(data=photo, rendition=RENDITIONS["session_image"])
    assert Image.open(io.BytesIO(result)).size == (2048, 1536)


# --- At most UPLOAD_DECODE_CONCURRENCY decodes per process ------------------------------------


def test_concurrent_uploads_decode_one_at_a_time(monkeypatch, fresh_decode_slots):
    active, most = 0, 0
    lock = threading.Lock()
    real = files._reencode

    def observed(**kwargs):
        nonlocal active, most
        with lock:
            active += 1
            most = max(most, active)
        try:
            time.sleep(0.05)  # long enough for the others to arrive
            return real(**kwargs)
        finally:
            with lock:
                active -= 1

    monkeypatch.setattr(files, "_reencode", observed)
    results = []
    barrier = threading.Barrier(6)

    def upload() -> None:
        barrier.wait()
        results.append(image_reencode(data=images.png_bytes(), rendition=RENDITIONS["avatar"]))

    threads = [threading.Thread(target=upload) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert (len(results), most) == (6, 1)


def test_the_concurrency_is_configurable(settings, monkeypatch, fresh_decode_slots):
    settings.UPLOAD_DECODE_CONCURRENCY = 2
    slots = []
    with files.decode_slot(), files.decode_slot():
        slots.append("two held")
        settings.UPLOAD_DECODE_WAIT_SECONDS = 0
        with pytest.raises(files.UploadsBusy), files.decode_slot():
            slots.append("a third")
    assert slots == ["two held"]


def test_an_upload_that_finds_no_free_slot_in_time_is_503_and_stores_nothing(
    settings, user, user_client, media_root, fresh_decode_slots
):
    settings.UPLOAD_DECODE_WAIT_SECONDS = 0
    with files.decode_slot():
        response = post_upload(user_client, images.png_bytes(), purpose="avatar")
    assert response.status_code == 503
    assert response.json()["code"] == "uploads_busy"
    assert StoredFile.objects.count() == 0
    user.refresh_from_db()
    assert user.avatar.name == ""
    # The slot is free again.
    assert post_upload(user_client, images.png_bytes(), purpose="avatar").status_code == 201


# --- Peak RSS of one upload, measured in a fresh process --------------------------------------


def worst_case_images() -> dict[str, bytes]:
    """The dearest image of each kind still accepted, and the WebP bomb of the review."""

    def square(fmt: str, mode: str, **params) -> bytes:
        has_alpha = mode in {"RGBA", "LA"}
        side = largest_side(image_format=fmt, mode=mode, has_alpha=has_alpha)
        color = {"1": 1, "L": 7, "P": 3, "I;16": 300}.get(mode, (1, 2, 3, 4)[: len(mode)])
        return encode(Image.new(mode, (side, side), color), fmt, **params)

    side = largest_side(image_format="WEBP", mode="RGB", has_alpha=False)
    noise = Image.frombytes("RGB", (side, side), os.urandom(side * side * 3))
    return {
        "webp-5000x5000-lossless-1kb": lossless_webp(5000, 5000),
        "webp-lossless-rgb": square("WEBP", "RGB", lossless=True),
        "webp-lossless-rgba": square("WEBP", "RGBA", lossless=True),
        "webp-lossy-noise": encode(noise, "WEBP", quality=80),
        "png-rgb": square("PNG", "RGB"),
        "png-rgba": square("PNG", "RGBA"),
        "png-palette": square("PNG", "P"),
        "png-1-bit": square("PNG", "1"),
        "png-16-bit": square("PNG", "I;16"),
        "jpeg-rgb": square("JPEG", "RGB", quality=50),
        "jpeg-8000x6000": encode(Image.new("RGB", (8000, 6000), (9, 9, 9)), "JPEG", quality=50),
    }


# About a minute: eleven fresh processes each decode one of the largest accepted images.
@pytest.mark.slow
def test_one_upload_of_any_worst_case_image_peaks_under_150_mb(tmp_path):
    env = {
        "PATH": os.environ["PATH"],
        "LANG": "C.UTF-8",
        "HOME": str(tmp_path),
        "DJANGO_SETTINGS_MODULE": "core.settings",
        "DJANGO_DEBUG": "true",
        "DJANGO_SECRET_KEY": "test-only-upload-rss-key-0123456789abcdefghijklmnopqrstuvwxyz",
        "SQLITE_PATH": str(tmp_path / "db.sqlite3"),
        "MEDIA_ROOT": str(tmp_path / "media"),
        "LOG_LEVEL": "ERROR",
    }

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(  # noqa: S603 (fixed argv, no shell)
            [sys.executable, *args],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )

    migrated = run("manage.py", "migrate", "--noinput")
    assert migrated.returncode == 0, migrated.stderr
    measured = {}
    for name, data in worst_case_images().items():
        path = Path(tmp_path / name)
        path.write_bytes(data)
        result = run("-m", "backend.tests.upload_rss", str(path), "session_image")
        assert result.returncode == 0, result.stderr
        measured[name] = json.loads(result.stdout.strip().splitlines()[-1])

    report = json.dumps(measured, indent=1)
    print(report)  # pytest -s shows the numbers
    bomb = measured.pop("webp-5000x5000-lossless-1kb")
    assert (bomb["status"], bomb["code"]) == (400, "image_too_large"), report
    for name, outcome in measured.items():
        assert outcome["status"] == 201, (name, report)
    for name, outcome in [("webp-5000x5000-lossless-1kb", bomb), *measured.items()]:
        assert outcome["upload_rss_mb"] <= PEAK_RSS_PER_UPLOAD_MB, (name, report)
