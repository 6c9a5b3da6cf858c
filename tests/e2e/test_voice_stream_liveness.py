"""End to end: the running synthetic-speech assessment of a live call (VerifyVoiceStream) over
the real service, with the AASIST pack conftest builds and real TTS / bona fide clips of one
speaker (LJ) from ../shared/data/voice_spoof_labels.tsv.

Which clips to stream is decided by CheckLiveness in the test (the clip the checker is most
sure about among a few candidates), never by a hard-coded score."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import grpc
import numpy as np
import pytest
import soundfile as sf

from bioverify.aio_client import AsyncBioverifyClient
from bioverify.client import BioverifyClient
from bioverify.v1 import common_pb2, liveness_pb2, liveness_pb2_grpc, voice_pb2
from bioverify.voice.audio_decode import mulaw_encode, resample
from tests.antispoof.antispoof_assets import spoof_rows
from tests.conftest import DATA

RATE = 16000


def _lj(label: str) -> list[Path]:
    """Long (>= 7.5 s) clips of the LJ speaker with this label, in file order."""
    return [
        DATA / r["path"]
        for r in spoof_rows()
        if r["label"] == label
        and r["speaker"] == "LJ"
        and float(r["duration_s"]) >= 7.5
        and r["attack_id"] != "VOCODER"
    ]


BONAFIDE = _lj("bonafide")
SPOOF = [p for p in _lj("spoof") if "gt_pwg" not in str(p)]  # TTS systems only
ENROL = BONAFIDE[:3]


def pcm16(path: Path) -> bytes:
    wave, sr = sf.read(str(path), dtype="float32")
    if wave.ndim > 1:
        wave = wave.mean(axis=1)
    wave = resample(wave, sr, RATE) if sr != RATE else wave
    return (np.clip(wave, -1.0, 1.0) * 32767).astype("<i2").tobytes()


def chunks(pcm: bytes, ms: int = 20, bytes_per_second: int = RATE * 2) -> list[bytes]:
    step = bytes_per_second * ms // 1000
    return [pcm[i : i + step] for i in range(0, len(pcm), step)]


PHONE_RATE = 8000


def mulaw8k(path: Path) -> bytes:
    """The clip as a phone line carries it: mono, 8 kHz, G.711 mu-law."""
    wave, sr = sf.read(str(path), dtype="float32", always_2d=True)
    return mulaw_encode(resample(wave.mean(axis=1), sr, PHONE_RATE))


def _check(stub: liveness_pb2_grpc.LivenessServiceStub, pcm: bytes) -> common_pb2.LivenessReport:
    clip = BioverifyClient.audio(pcm, encoding="PCM_S16LE", sample_rate_hz=RATE)
    reply = stub.CheckLiveness(liveness_pb2.CheckLivenessRequest(clip=clip), timeout=60)
    report: common_pb2.LivenessReport = reply.liveness
    return report


@pytest.fixture(scope="module")
def clips(client: BioverifyClient, face_server: str) -> Iterator[dict[str, bytes]]:
    """The LJ speaker enrolled from bona fide speech; the TTS clip the checker rejects most
    surely and the bona fide clip (not enrolled) it accepts most surely, among a few each."""
    reply = client.enroll_voice("lj-caller", [client.audio(p.read_bytes()) for p in ENROL])
    assert reply.accepted_count == len(ENROL)
    spoofs = [pcm16(p) for p in SPOOF[::4][:2]]
    genuine = [pcm16(p) for p in BONAFIDE[len(ENROL) :][::3][:2]]
    with grpc.insecure_channel(face_server) as channel:
        stub = liveness_pb2_grpc.LivenessServiceStub(channel)
        spoof_reports = [_check(stub, pcm) for pcm in spoofs]
        genuine_reports = [_check(stub, pcm) for pcm in genuine]
    spoof = min(range(len(spoofs)), key=lambda i: spoof_reports[i].score)
    live = max(range(len(genuine)), key=lambda i: genuine_reports[i].score)
    assert not spoof_reports[spoof].live and genuine_reports[live].live
    yield {"spoof": spoofs[spoof], "bonafide": genuine[live]}
    client.delete_subject("lj-caller")


def stream(
    client: BioverifyClient,
    pcm: bytes,
    *,
    require_liveness: bool | None = None,
    observe_only: bool = False,
) -> list[voice_pb2.VoiceStreamResponse]:
    return list(
        client.verify_voice_stream(
            "lj-caller",
            chunks(pcm),
            encoding="PCM_S16LE",
            sample_rate_hz=RATE,
            interim_every_speech_seconds=2.0,
            require_liveness=require_liveness,
            observe_only=observe_only,
        )
    )


def test_spoofed_call_is_flagged_mid_call_and_blocked_when_required(
    client: BioverifyClient, clips: dict[str, bytes]
) -> None:
    replies = stream(client, clips["spoof"], require_liveness=True)
    interim, final = replies[:-1], replies[-1]
    assert final.final and len(interim) >= 2
    assert not interim[0].liveness.checked  # 2 s of speech: not yet a full AASIST window
    checked = [r for r in interim if r.liveness.checked]
    assert checked, "no interim update carried a running assessment"
    report = checked[0].liveness
    assert 0.0 <= report.score <= 1.0 and report.threshold > 0 and not report.observe_only
    names = {c.name for c in report.checks}
    assert "aasist" in names and "stream_windows" in names
    assert any(not c.passed and c.weight < 0 for c in report.checks)  # what pulled it down
    assert all(c.detail for c in report.checks)
    assert any(c.weight != 0.0 for c in report.checks)
    # An agent is warned mid-call: the interim carrying the verdict already blocks.
    assert not report.live and checked[0].decision == common_pb2.SPOOF_SUSPECTED

    assert final.liveness.checked and not final.liveness.live
    assert final.decision == common_pb2.SPOOF_SUSPECTED
    codes = [r.code for r in final.reasons]
    assert codes[0] == "SPOOF_SUSPECTED" and "VOICE_SYNTHETIC_SPEECH" in codes
    assert any("synthetic speech suspected" in r.message for r in final.liveness.reasons)


def test_spoofed_call_in_observe_mode_and_by_default_is_reported_not_blocked(
    client: BioverifyClient, clips: dict[str, bytes]
) -> None:
    for require, observe in ((True, True), (None, False)):
        policy = f"require_liveness={require}, observe_only={observe}"
        final = stream(client, clips["spoof"], require_liveness=require, observe_only=observe)[-1]
        assert final.liveness.checked and not final.liveness.live, policy
        assert final.liveness.observe_only and final.liveness.reasons
        assert final.decision != common_pb2.SPOOF_SUSPECTED, policy
        assert "SPOOF_SUSPECTED" not in [r.code for r in final.reasons]


def test_bona_fide_call_is_live_and_accepted(
    client: BioverifyClient, clips: dict[str, bytes]
) -> None:
    final = stream(client, clips["bonafide"], require_liveness=True)[-1]
    assert final.liveness.checked and final.liveness.live and not final.liveness.reasons
    assert final.liveness.score >= final.liveness.threshold
    assert final.decision == common_pb2.ACCEPT
    # a live call reports no failed check, even for a component below its typical value
    assert all(c.passed for c in final.liveness.checks), final.liveness.checks


def test_mulaw_8k_bona_fide_call_ends_live(client: BioverifyClient, face_server: str) -> None:
    """A genuine caller on an 8 kHz G.711 line is scored by the telephone-band model and is
    not flagged (the wideband model flagged nearly every such call). The clip is the one
    CheckLiveness, sent the same audio, accepts most surely among a few bona fide ones."""
    candidates = [mulaw8k(p) for p in BONAFIDE[len(ENROL) :][::2][:3]]
    with grpc.insecure_channel(face_server) as channel:
        stub = liveness_pb2_grpc.LivenessServiceStub(channel)
        reports = []
        for data in candidates:
            clip = BioverifyClient.audio(data, encoding="MULAW", sample_rate_hz=PHONE_RATE)
            request = liveness_pb2.CheckLivenessRequest(clip=clip)
            reports.append(stub.CheckLiveness(request, timeout=60).liveness)
    assert all(sum(c.name == "bandwidth" for c in r.checks) == 1 for r in reports)
    assert all(
        "narrowband input: telephone-band model" in c.detail
        for r in reports
        for c in r.checks
        if c.name == "bandwidth"
    )
    best = max(range(len(candidates)), key=lambda i: reports[i].score)
    assert reports[best].live
    replies = list(
        client.verify_voice_stream(
            "lj-caller",
            chunks(candidates[best], bytes_per_second=PHONE_RATE),
            encoding="MULAW",
            sample_rate_hz=PHONE_RATE,
            interim_every_speech_seconds=2.0,
            require_liveness=True,
        )
    )
    final = replies[-1]
    assert final.final and final.liveness.checked
    assert final.liveness.live and not final.liveness.reasons
    assert final.decision != common_pb2.SPOOF_SUSPECTED
    assert "SPOOF_SUSPECTED" not in [r.code for r in final.reasons]
    band = [c.detail for c in final.liveness.checks if c.name == "stream_bandwidth"]
    assert band and "telephone-band model" in band[0]


def test_async_client_stream_exposes_liveness(face_server: str, clips: dict[str, bytes]) -> None:
    async def scenario() -> list[voice_pb2.VoiceStreamResponse]:
        async with AsyncBioverifyClient(face_server, timeout=60) as client:

            async def audio() -> AsyncIterator[bytes]:
                for chunk in chunks(clips["bonafide"]):
                    yield chunk

            return [
                r
                async for r in client.verify_voice_stream(
                    "lj-caller",
                    audio(),
                    encoding="PCM_S16LE",
                    sample_rate_hz=RATE,
                    observe_only=True,
                )
            ]

    replies = asyncio.run(scenario())
    assert replies[-1].final and replies[-1].liveness.checked
    assert replies[-1].liveness.checks


def test_a_call_outlasts_the_clients_per_request_timeout(
    face_server: str, clips: dict[str, bytes]
) -> None:
    """A live call lasts as long as its audio: the client's unary ``timeout`` (here 1 s) is
    not its deadline (3 s of audio sent in real time used to end in DEADLINE_EXCEEDED)."""
    real_time = chunks(clips["bonafide"][: RATE * 2 * 3])

    def paced() -> Iterator[bytes]:
        for chunk in real_time:
            time.sleep(0.02)
            yield chunk

    async def paced_async() -> AsyncIterator[bytes]:
        for chunk in real_time:
            await asyncio.sleep(0.02)
            yield chunk

    with BioverifyClient(face_server, timeout=1.0, retries=0) as sync_client:
        replies = sync_client.verify_voice_stream(
            "lj-caller", paced(), encoding="PCM_S16LE", sample_rate_hz=RATE
        )
        assert list(replies)[-1].final

    async def scenario() -> voice_pb2.VoiceStreamResponse:
        async with AsyncBioverifyClient(face_server, timeout=1.0) as client:
            replies = client.verify_voice_stream(
                "lj-caller", paced_async(), encoding="PCM_S16LE", sample_rate_hz=RATE
            )
            return [r async for r in replies][-1]

    assert asyncio.run(scenario()).final
