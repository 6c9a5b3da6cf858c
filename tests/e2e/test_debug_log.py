"""LOG_LEVEL=DEBUG turns on the service's own debugging, never third-party loggers that log
what a client sent (Pillow logs EXIF tag values and PNG chunks of every image it opens)."""

from __future__ import annotations

import io
import re
from pathlib import Path

from PIL import Image

from bioverify.client import BioverifyClient
from tests.conftest import DATA, lfw
from tests.service_process import ServiceProcess

EXIF_MAKE = "ExifMakeMarker"  # a value only the client's image holds


def with_exif(path: Path) -> bytes:
    """The LFW photo as a JPEG carrying EXIF tags (camera make, a date, orientation)."""
    image = Image.open(path)
    exif = Image.Exif()
    exif[0x010F] = EXIF_MAKE  # Make
    exif[0x0132] = "2024:01:02 03:04:05"  # DateTime
    exif[0x0112] = 1  # Orientation
    buf = io.BytesIO()
    image.save(buf, format="JPEG", exif=exif)
    return buf.getvalue()


def as_png(path: Path) -> bytes:
    buf = io.BytesIO()
    Image.open(path).save(buf, format="PNG")
    return buf.getvalue()


def test_debug_log_holds_no_third_party_payload_details(tmp_path: Path) -> None:
    service = ServiceProcess(
        tmp_path / "run",
        tmp_path / "data",
        log_level="DEBUG",
        face_liveness_pack="none",
        voice_antispoof_pack="none",
    ).start()
    try:
        with BioverifyClient(service.target, timeout=120, retries=0) as client:
            client.wait_until_serving(timeout=120)
            photos = [lfw("Bill_Clinton", n) for n in (1, 3)]
            reply = client.enroll_face("exif-subject", [with_exif(photos[0]), as_png(photos[1])])
            assert reply.accepted_count == 2
            client.verify_face("exif-subject", with_exif(lfw("Bill_Clinton", 7)))
            clip = (DATA / "speaker" / "audio" / "timit_dr1-mcpm0" / "sa1.flac").read_bytes()
            client.compare_voices(client.audio(clip), client.audio(clip))
    finally:
        assert service.stop() == 0
    log = service.log()
    assert EXIF_MAKE not in log
    assert " DEBUG " in log  # the level took effect
    pillow = [line for line in log.splitlines() if re.search(r" \w+ PIL(\.\S+)? ", line)]
    assert not pillow, "Pillow logged the client's images:\n" + "\n".join(pillow[:20])
