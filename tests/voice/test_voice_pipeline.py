"""End to end without gRPC: bytes -> decode -> VoicePipeline -> embedding + quality."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np
import pytest

from bioverify.errors import AudioTooShort, InvalidAudio, TooLarge
from bioverify.voice.audio_decode import (
    AudioLimits,
    DecodedAudio,
    decode_audio,
    mulaw_encode,
    resample,
)
from bioverify.voice.pipeline import VoicePipeline, keep_speech, speech_for_embedding
from bioverify.voice.ports import SpeechSegment
from bioverify.voice.quality import VoiceIssue

Clip = tuple[np.ndarray, int]
Encode = Callable[..., bytes]


def _decoded(wave: np.ndarray, rate: int) -> DecodedAudio:
    return DecodedAudio(wave, rate, 1, wave.size / rate, "PCM_S16LE")


def test_real_speech_passes(
    pipeline: VoicePipeline, speech: Clip, container: Encode, limits: AudioLimits
) -> None:
    wave, rate = speech
    decoded = decode_audio(container(wave, rate, "FLAC", "PCM_16"), limits=limits)
    sample = pipeline.analyse(decoded)
    assert sample.embedding.shape == (192,)
    assert np.linalg.norm(sample.embedding) == pytest.approx(1.0, abs=1e-5)
    assert sample.quality.ok, sample.quality.issues
    assert 3.0 < sample.net_speech_s <= decoded.duration_s
    assert sample.duration_s == pytest.approx(decoded.duration_s)
    assert sample.segments and sample.quality.snr_db > 15
    # only speech is embedded, so it stays close to the whole-clip embedding
    assert float(sample.embedding @ pipeline.encoder.embed(wave)) > 0.9


@pytest.mark.parametrize("kind", ["silence", "white_noise"])
def test_no_speech_is_audio_too_short(pipeline: VoicePipeline, kind: str) -> None:
    rng = np.random.default_rng(3)
    wave = (
        np.zeros(16000 * 3, np.float32)
        if kind == "silence"
        else (0.1 * rng.standard_normal(16000 * 3)).astype(np.float32)
    )
    with pytest.raises(AudioTooShort, match="no speech was detected"):
        pipeline.analyse(_decoded(wave, 16000))


def test_telephone_mulaw_call_side(
    pipeline: VoicePipeline, clip: Callable[[str], Clip], limits: AudioLimits
) -> None:
    """A stereo 8 kHz mu-law call: the caller is on channel 1, someone else on channel 0."""
    caller, rate = clip("speaker/audio/libri_2033/2033-164914-0009.flac")
    agent, _ = clip("speaker/audio/timit_dr3-falk0/sx96.flac")
    caller8, agent8 = resample(caller, rate, 8000), resample(agent, rate, 8000)
    agent8 = np.pad(agent8, (0, caller8.size - agent8.size))
    interleaved = np.stack([agent8, caller8], axis=1).reshape(-1)
    payload = mulaw_encode(interleaved)
    decoded = decode_audio(
        payload, encoding="MULAW", sample_rate_hz=8000, channels=2, channel=1, limits=limits
    )
    assert decoded.sample_rate_hz == 8000 and decoded.input_channels == 2
    sample = pipeline.analyse(decoded)
    clean = pipeline.encoder.embed(caller)
    other = pipeline.encoder.embed(agent)
    assert float(sample.embedding @ clean) > 0.6
    assert float(sample.embedding @ other) < 0.3
    assert VoiceIssue.CLIPPED not in sample.quality.codes


def test_short_speech_reports_not_enough_speech(pipeline: VoicePipeline, speech: Clip) -> None:
    wave, rate = speech
    strict = VoicePipeline(
        pipeline.vad,
        pipeline.encoder,
        pipeline.limits,
        dataclasses.replace(pipeline.thresholds, min_net_speech_s=30.0),
    )
    sample = strict.analyse(_decoded(wave, rate))
    assert sample.quality.codes == (VoiceIssue.NOT_ENOUGH_SPEECH,)


def test_clipped_recording_is_flagged(pipeline: VoicePipeline, speech: Clip) -> None:
    wave, rate = speech
    loud = np.clip(wave * 20, -1.0, 1.0)
    sample = pipeline.analyse(_decoded(loud, rate))
    assert VoiceIssue.CLIPPED in sample.quality.codes


def test_limits_are_enforced(pipeline: VoicePipeline, speech: Clip) -> None:
    wave, rate = speech
    short_limit = VoicePipeline(
        pipeline.vad, pipeline.encoder, AudioLimits(10**8, 2.0), pipeline.thresholds
    )
    with pytest.raises(TooLarge):
        short_limit.analyse(_decoded(wave, rate))
    with pytest.raises(InvalidAudio, match="4000 Hz is not supported"):
        pipeline.analyse(_decoded(wave[:4000], 4000))


def test_keep_speech() -> None:
    wave = np.arange(100, dtype=np.float32)
    segs = (SpeechSegment(0.1, 0.2), SpeechSegment(0.5, 0.55), SpeechSegment(0.99, 2.0))
    np.testing.assert_array_equal(
        keep_speech(wave, 100, segs), np.r_[10:20, 50:55, 99:100].astype(np.float32)
    )
    assert keep_speech(wave, 100, ()).size == 0


def test_mostly_speech_is_embedded_whole_and_long_non_speech_is_cut() -> None:
    rate = 16000
    wave = np.arange(10 * rate, dtype=np.float32)
    # 10 s with 1.4 s of pauses: fluent speech, embedded whole (pauses included).
    fluent = (SpeechSegment(0.0, 4.3), SpeechSegment(5.0, 7.0), SpeechSegment(7.7, 10.0))
    assert speech_for_embedding(wave, rate, fluent) is wave
    # 10 s with 4 s of hold music in the middle: only the (padded) speech is embedded.
    on_hold = (SpeechSegment(0.0, 3.0), SpeechSegment(7.0, 10.0))
    cut = speech_for_embedding(wave, rate, on_hold)
    assert cut.size == round((3.15 + 3.15) * rate)
    assert cut[0] == 0 and cut[-1] == wave[-1]
    # Long in seconds but a small share of a long clip: whole.
    long_clip = np.zeros(60 * rate, dtype=np.float32)
    assert speech_for_embedding(long_clip, rate, (SpeechSegment(2.0, 60.0),)) is long_clip
