"""A tenant that requires wideband audio for voice liveness: telephone-band samples (declared
or measured) fail liveness with NARROWBAND_NOT_ALLOWED, so an attacker cannot downgrade to the
weaker telephone-band spoofing model; other tenants keep the telephone-band model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bioverify.antispoof.bandwidth import telephony_round_trip
from bioverify.antispoof.voice_checker import VoiceSpoofChecker
from bioverify.server.app import tenant_liveness_policies
from bioverify.settings import Settings
from bioverify.usecases.common import RequestPolicy
from bioverify.usecases.liveness import NARROWBAND_NOT_ALLOWED, LivenessGate, TenantLivenessPolicy
from bioverify.usecases.voice import StreamSpoofMonitor
from tests.antispoof.antispoof_assets import read_clip

BONA_FIDE = "voice_spoof/vctk_vcdemo/bonafide/p225_003.flac"


@pytest.fixture(scope="module")
def gate(shipped_manifest: dict[str, Any], detector: Any) -> LivenessGate:
    checker = VoiceSpoofChecker.from_manifest(shipped_manifest, detector)
    return LivenessGate(
        face=None,
        voice=checker,
        default=TenantLivenessPolicy(require_voice=True),
        tenants={
            "strict": TenantLivenessPolicy(require_voice=True, allow_narrowband_voice=False),
            "strict-observe": TenantLivenessPolicy(
                require_voice=True, allow_narrowband_voice=False, observe_only=True
            ),
        },
    )


def codes(result: Any) -> list[str]:
    return [code for code, _ in result.assessment.reasons]


def test_wideband_only_tenant_refuses_telephone_audio(gate: LivenessGate, vad: Any) -> None:
    wide = read_clip(BONA_FIDE)
    phone = telephony_round_trip(wide)
    request = RequestPolicy()
    wide_segments, phone_segments = vad.speech_segments(wide), vad.speech_segments(phone)

    strict_phone = gate.voice_result(request, "strict", phone, phone_segments)
    assert strict_phone is not None and strict_phone.blocks
    assert codes(strict_phone)[0] == "NARROWBAND_NOT_ALLOWED"
    declared = gate.voice_result(request, "strict", wide, wide_segments, declared_narrowband=True)
    assert declared is not None and codes(declared)[0] == "NARROWBAND_NOT_ALLOWED"

    strict_wide = gate.voice_result(request, "strict", wide, wide_segments)
    assert strict_wide is not None and "NARROWBAND_NOT_ALLOWED" not in codes(strict_wide)
    default_phone = gate.voice_result(request, "bank", phone, phone_segments)
    assert default_phone is not None and "NARROWBAND_NOT_ALLOWED" not in codes(default_phone)

    observed = gate.voice_result(request, "strict-observe", phone, phone_segments)
    assert observed is not None and not observed.blocks  # reported, not blocking
    assert "NARROWBAND_NOT_ALLOWED" in codes(observed)


def test_tenant_policy_file_sets_the_narrowband_rule(tmp_path: Path) -> None:
    path = tmp_path / "tenants.yaml"
    path.write_text(
        "callcentre:\n  require_voice: true\n  allow_narrowband_voice: false\napp: {}\n"
    )
    settings = Settings(liveness_tenant_policies=str(path), voice_liveness_allow_narrowband=True)
    policies = tenant_liveness_policies(settings)
    assert (
        policies["callcentre"].require_voice and not policies["callcentre"].allow_narrowband_voice
    )
    assert policies["app"].allow_narrowband_voice


def test_live_call_windows_follow_the_tenant_rule(gate: LivenessGate) -> None:
    """A 16 kHz stream of phone audio (measured, not declared, narrowband): each assessed
    window of a wideband-only tenant's call fails like a clip would; other tenants' don't."""
    phone = telephony_round_trip(read_clip(BONA_FIDE))
    for tenant, refused in (("strict", True), ("bank", False)):
        monitor = StreamSpoofMonitor(gate, tenant, rate=16000, input_rate=16000)
        for start in range(0, phone.size, 512):
            monitor.add(phone[start : start + 512], True)
        span = monitor.take(final=True)
        assert span is not None
        reasons = [code for code, _ in monitor.assess(span).reasons]
        assert (NARROWBAND_NOT_ALLOWED in reasons) == refused, (tenant, reasons)
