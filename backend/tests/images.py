"""Image files for the upload tests: real ones, hostile ones, and helpers to inspect results."""

import io
import struct
import zlib

from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

GPS_IFD = 0x8825
ORIENTATION = 0x0112
# GPS: 48°51'24"N 2°21'3"E (Paris); what a phone photo would give away.
GPS_TAGS = {1: "N", 2: (48.0, 51.0, 24.0), 3: "E", 4: (2.0, 21.0, 3.0)}
HTML_PAYLOAD = b"<html><body><script>alert(document.cookie)</script></body></html>"
SVG = (
    b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="10" height="10">'
    b"<script>alert(1)</script><rect width='10' height='10'/></svg>"
)


def _encode(image: Image.Image, fmt: str, **params) -> bytes:
    output = io.BytesIO()
    image.save(output, fmt, **params)
    return output.getvalue()


def jpeg_bytes(
    size=(64, 48), *, gps: bool = False, orientation: int | None = None, comment: bytes = b""
) -> bytes:
    exif = Image.Exif()
    if gps:
        exif[GPS_IFD] = GPS_TAGS
    if orientation is not None:
        exif[ORIENTATION] = orientation
    params = {"exif": exif.tobytes()} if len(exif) else {}
    if comment:
        params["comment"] = comment
    return _encode(Image.new("RGB", size, (200, 30, 30)), "JPEG", quality=90, **params)


def png_bytes(size=(40, 30), *, mode: str = "RGBA", gps: bool = False) -> bytes:
    color = (30, 200, 30, 128) if mode == "RGBA" else (30, 200, 30)
    params = {}
    if gps:
        exif = Image.Exif()
        exif[GPS_IFD] = GPS_TAGS
        params["exif"] = exif.tobytes()
    return _encode(Image.new(mode, size, color), "PNG", **params)


def webp_bytes(size=(50, 20), *, gps: bool = False) -> bytes:
    params = {}
    if gps:
        exif = Image.Exif()
        exif[GPS_IFD] = GPS_TAGS
        params["exif"] = exif.tobytes()
    return _encode(Image.new("RGB", size, (30, 30, 200)), "WEBP", quality=90, **params)


def gif_bytes() -> bytes:
    return _encode(Image.new("P", (8, 8)), "GIF")


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    body = kind + data
    return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))


def huge_png_bytes(width: int = 20_000, height: int = 20_000) -> bytes:
    """A complete, valid 1-bit PNG of width x height black pixels, built without ever holding
    the pixels in memory: a decompression bomb of a few tens of KB."""
    compressor = zlib.compressobj(9)
    row = b"\x00" * (1 + (width + 7) // 8)  # filter byte + packed bits
    idat = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", idat)
        + _png_chunk(b"IEND", b"")
    )


def upload(data: bytes, name: str = "picture.png", content_type: str = "image/png"):
    return SimpleUploadedFile(name, data, content_type=content_type)


def opened(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image
