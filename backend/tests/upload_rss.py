"""Run as a script by test_image_limits.py: one upload in a fresh process, then its peak RSS.

    python -m backend.tests.upload_rss IMAGE_FILE PURPOSE

The database (SQLITE_PATH) is migrated beforehand by the test, so the peak is this upload's:
Django and the app loaded, one user (and session) created, then one POST
/api/storage/upload/. Prints one JSON line: the answer's status and code, the high-water RSS
before the upload, after it, and the difference (what the upload cost).
"""

import json
import secrets
import sys
from pathlib import Path


def peak_rss_kib() -> int:
    """This process's high-water RSS (VmHWM). Not getrusage's ru_maxrss: Linux carries that over
    from the parent across fork and exec, so a child of a big pytest would report pytest's."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise RuntimeError("no VmHWM in /proc/self/status")


def main() -> None:
    image_path, purpose = sys.argv[1], sys.argv[2]
    import django

    django.setup()
    from django.core.files.uploadedfile import SimpleUploadedFile
    from rest_framework.test import APIClient

    from backend.models import User

    with open(image_path, "rb") as image_file:
        data = image_file.read()
    user = User.objects.create_user(
        username=f"rss-{secrets.token_hex(6)}", password=None, role=User.Role.CREATOR
    )
    fields = {"file": SimpleUploadedFile("upload.bin", data), "purpose": purpose}
    if purpose == "session_image":
        from backend.tests.factories import SessionFactory

        fields["session_id"] = SessionFactory(creator=user).pk
    client = APIClient()
    client.force_authenticate(user)
    # Everything before the upload (Django, the app, the user) is the baseline.
    baseline_kib = peak_rss_kib()
    response = client.post("/api/storage/upload/", fields, format="multipart")
    body = response.json()
    peak_kib = peak_rss_kib()
    print(
        json.dumps(
            {
                "status": response.status_code,
                "code": body.get("code"),
                "detail": body.get("detail"),
                "baseline_rss_mb": round(baseline_kib / 1024, 1),
                "peak_rss_mb": round(peak_kib / 1024, 1),
                "upload_rss_mb": round((peak_kib - baseline_kib) / 1024, 1),
            }
        )
    )


if __name__ == "__main__":
    main()
