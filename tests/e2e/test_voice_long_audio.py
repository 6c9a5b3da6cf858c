"""End to end: long and high-rate audio over a real gRPC server on loopback costs the memory of
its 16 kHz samples, not of its sample rate and channels (the service runs in this process, so
tracemalloc sees its numpy arrays)."""

from __future__ import annotations

import grpc
import numpy as np
import pytest

from bioverify.client import BioverifyClient, BioverifyClientError
from bioverify.v1 import common_pb2
from tests.e2e.test_voice_service import FEMALE, MALE, load, wav_bytes
from tests.long_audio import long_flac, peak_bytes_of


def test_enrolment_of_many_long_192_khz_clips_holds_their_16_khz_samples_only(
    client: BioverifyClient,
) -> None:
    """The reviewer's request, with 6 of its 20 clips: 299 s of 192 kHz silence in 180 KB of
    FLAC each. Every clip is rejected for its lack of speech; the service's traced memory
    stays near two clips at 16 kHz (the inference pool's two workers), where holding each
    clip at 192 kHz took 230 MB per clip (1.4 GB here; the 20-clip request went to 6 GB), and
    a rejected clip's error kept it until the last clip was done."""
    silence = long_flac(299.0, 192000, 1)
    assert len(silence) < 250_000
    clips = [client.audio(silence) for _ in range(6)]
    reply, peak = peak_bytes_of(lambda: client.enroll_voice("long-silence", clips, dry_run=True))
    assert reply.accepted_count == 0 and not reply.HasField("template")
    assert [r.code for r in reply.reasons] == ["NO_SAMPLE_ACCEPTED"]
    assert [s.reasons[0].code for s in reply.samples] == ["NOT_ENOUGH_SPEECH"] * 6
    assert peak < 150_000_000, f"{peak / 1e6:.0f} MB"  # about 90 MB


def test_long_192_khz_recording_with_speech_is_compared_in_bounded_memory(
    client: BioverifyClient,
) -> None:
    """A legitimate 192 kHz recording of 299 s (a few seconds of speech, then silence) is
    matched like its 16 kHz original, within memory proportional to its 16 kHz samples."""
    speech = load(MALE[2], 192000)

    def speech_then_silence(start: int, n: int) -> np.ndarray:
        block = np.zeros(n, np.float32)
        end = min(speech.size, start + n)
        if start < end:
            block[: end - start] = speech[start:end]
        return block[:, None]

    recording = long_flac(299.0, 192000, 1, speech_then_silence)
    reference = client.audio(MALE[1].read_bytes())
    reply, peak = peak_bytes_of(lambda: client.compare_voices(reference, client.audio(recording)))
    assert reply.match.decision == common_pb2.ACCEPT
    assert reply.quality_b.input_sample_rate_hz == 192000
    assert reply.quality_b.duration_seconds == pytest.approx(299.0)
    # about 100 MB: 19 MB of 16 kHz samples, the VAD's and the SNR's float64 frames; 520 MB
    # when the clip was held at 192 kHz
    assert peak < 200_000_000, f"{peak / 1e6:.0f} MB"
    original = client.compare_voices(reference, client.audio(MALE[2].read_bytes()))
    assert reply.match.similarity == pytest.approx(original.match.similarity, abs=0.02)


def test_eight_channel_recordings(client: BioverifyClient) -> None:
    """8 channels at 96 kHz with the speaker on channel 3 are compared on that channel; the
    reviewer's 8 channels of 299 s at 192 kHz (463 KB of FLAC, 459 M samples to decode) are
    refused from the header, naming what to send instead."""
    speaker = load(MALE[2], 96000)
    other = load(FEMALE[0], 96000)[: speaker.size]
    frames = np.zeros((speaker.size, 8), np.float32)
    frames[:, 3] = speaker
    frames[: other.size, 0] = other
    recording = wav_bytes(frames, 96000, "FLAC", "PCM_24")
    reference = client.audio(MALE[1].read_bytes())
    reply = client.compare_voices(reference, client.audio(recording, channel=3))
    assert reply.match.decision == common_pb2.ACCEPT
    assert (reply.quality_b.input_sample_rate_hz, reply.quality_b.input_channels) == (96000, 8)

    eight = long_flac(299.0, 192000, 8)
    assert len(eight) < 600_000
    with pytest.raises(BioverifyClientError) as refused:
        client.compare_voices(client.audio(eight), client.audio(eight))
    assert refused.value.code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert refused.value.reason == "TOO_LARGE"
    message = refused.value.message
    assert message.startswith("clip_a: the audio holds 8 channels of 299.0 s at 192000 Hz")
    assert "fewer channels" in message
