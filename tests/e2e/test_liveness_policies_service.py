"""Liveness policies and capabilities over one-off real services: a wideband-only tenant's
CheckLiveness(clip) on telephone audio, and a live capture sent to a service that has no face
liveness pack."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest

from bioverify.client import BioverifyClientError
from bioverify.voice.audio_decode import mulaw_encode, resample
from tests.antispoof.antispoof_assets import read_clip
from tests.conftest import custom_service, data_dir_with_packs, lfw

BONA_FIDE = "voice_spoof/vctk_vcdemo/bonafide/p225_003.flac"


def test_wideband_only_tenant_refuses_a_telephone_clip_in_check_liveness(
    tmp_path: Path, models_dir: Path, antispoof_packs: Path
) -> None:
    """CheckLiveness(clip) applies the tenant's narrowband rule like every other voice path:
    a G.711 clip of a real speaker fails with NARROWBAND_NOT_ALLOWED for a wideband-only
    tenant and gets the telephone-band model elsewhere."""
    policies = tmp_path / "tenants.yaml"
    policies.write_text("callcentre:\n  allow_narrowband_voice: false\n")
    data = data_dir_with_packs(tmp_path / "data", antispoof_packs)
    with custom_service(
        data,
        models_dir,
        voice_antispoof_pack="voice-antispoof",
        liveness_tenant_policies=str(policies),
    ) as client:
        phone = client.audio(
            mulaw_encode(resample(read_clip(BONA_FIDE), 16000, 8000)),
            encoding="MULAW",
            sample_rate_hz=8000,
        )
        strict = client.check_liveness(clip=phone, tenant="callcentre").liveness
        assert not strict.live and strict.reasons[0].code == "NARROWBAND_NOT_ALLOWED"
        other = client.check_liveness(clip=phone, tenant="bank").liveness
        assert other.checked and "NARROWBAND_NOT_ALLOWED" not in [r.code for r in other.reasons]


def test_a_live_capture_needs_a_face_liveness_pack(tmp_path: Path, models_dir: Path) -> None:
    """Without a face liveness pack, a face request sent with a live capture is UNIMPLEMENTED
    (not silently judged without it), before anything is enrolled."""
    image = lfw("Roger_Federer", 8).read_bytes()
    with custom_service(tmp_path, models_dir) as client:
        for call in (
            lambda: client.enroll_face("someone", [image], live_frames=[image, image]),
            lambda: client.identify_face(image, live_frames=[image, image]),
        ):
            with pytest.raises(BioverifyClientError) as info:
                call()
            assert info.value.code == grpc.StatusCode.UNIMPLEMENTED
            assert "face liveness" in info.value.message
        assert not client.list_subjects().subjects
