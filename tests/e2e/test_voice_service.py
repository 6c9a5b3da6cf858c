"""End to end: voice over a real gRPC server on loopback, real CAM++ and Silero VAD, real speech
from ../shared/data (TIMIT and LibriSpeech clips)."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import grpc
import numpy as np
import pytest
import soundfile as sf

from bioverify.client import BioverifyClient, BioverifyClientError
from bioverify.packs import PackCatalog
from bioverify.v1 import common_pb2, voice_pb2
from bioverify.voice.audio_decode import alaw_encode, mulaw_encode, resample
from tests.conftest import DATA, MODELS, custom_service

AUDIO = DATA / "speaker" / "audio"
MALE = sorted((AUDIO / "timit_dr1-mcpm0").glob("*.flac"))
FEMALE = sorted((AUDIO / "timit_dr3-falk0").glob("*.flac"))
LIBRI = sorted((AUDIO / "libri_2033").glob("*.flac"))


def wav_bytes(wave: np.ndarray, rate: int, fmt: str = "WAV", subtype: str | None = None) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, wave, rate, format=fmt, subtype=subtype)
    return buf.getvalue()


def load(path: Path, rate: int = 16000) -> np.ndarray:
    wave, sr = sf.read(str(path), dtype="float32")
    return resample(wave, sr, rate) if sr != rate else wave


def concat(paths: list[Path], rate: int = 16000) -> np.ndarray:
    return np.concatenate([load(p, rate) for p in paths])


def expect(code: grpc.StatusCode, fn: object, *args: object, **kwargs: object) -> str:
    with pytest.raises(BioverifyClientError) as info:
        fn(*args, **kwargs)  # type: ignore[operator]
    assert info.value.code == code, info.value
    assert "Traceback" not in info.value.message and "/work/" not in info.value.message
    return info.value.message


def test_service_info_lists_the_speaker_model(client: BioverifyClient) -> None:
    voice = [m for m in client.service_info().models if m.role == "speaker"]
    assert len(voice) == 1 and voice[0].pack == "voice-campplus"
    assert voice[0].embedding_dim == 192 and voice[0].calibration.slope > 0
    assert {f.path for f in voice[0].files} >= {"campplus_3dspeaker/campplus_cn_en_common.onnx"}


def test_compare_voices_same_and_different(client: BioverifyClient) -> None:
    same = client.compare_voices(
        client.audio(MALE[0].read_bytes()), client.audio(MALE[3].read_bytes())
    )
    assert same.match.decision == common_pb2.ACCEPT and same.match.confidence > 0.5
    q = same.quality_a
    assert q.input_sample_rate_hz == 16000 and q.input_channels == 1
    assert 1.0 < q.net_speech_seconds <= q.duration_seconds and q.snr_db > 10
    assert q.clipping_fraction < 0.01
    diff = client.compare_voices(
        client.audio(MALE[0].read_bytes()), client.audio(FEMALE[0].read_bytes())
    )
    assert diff.match.decision == common_pb2.REJECT and diff.match.confidence < 0.5


def test_formats_rates_and_channels(client: BioverifyClient) -> None:
    reference = client.audio(MALE[1].read_bytes())
    wave16 = load(MALE[2])
    wave44 = load(MALE[2], 44100)
    wave8 = load(MALE[2], 8000)
    stereo = np.stack([wave44, np.zeros_like(wave44)], axis=1)  # caller on the left channel
    variants = {
        "wav-44k": client.audio(wav_bytes(wave44, 44100)),
        "ogg": client.audio(wav_bytes(wave16, 16000, "OGG", "VORBIS")),
        "mp3": client.audio(wav_bytes(wave16, 16000, "MP3", "MPEG_LAYER_III")),
        "stereo-left": client.audio(wav_bytes(stereo, 44100), channel=0),
        "pcm16-8k": client.audio(
            (wave8 * 32767).astype("<i2").tobytes(), encoding="PCM_S16LE", sample_rate_hz=8000
        ),
        "mulaw-8k": client.audio(mulaw_encode(wave8), encoding="MULAW", sample_rate_hz=8000),
        "alaw-8k": client.audio(alaw_encode(wave8), encoding="ALAW", sample_rate_hz=8000),
    }
    for name, clip in variants.items():
        reply = client.compare_voices(reference, clip)
        assert reply.match.decision == common_pb2.ACCEPT, name
    rate = client.compare_voices(reference, variants["mulaw-8k"]).quality_b.input_sample_rate_hz
    assert rate == 8000
    # Two phone-line clips are scored against the pack's telephone thresholds (a shared line
    # raises impostor scores); a phone clip against a wideband one keeps the default ones.
    pack = PackCatalog(MODELS, MODELS / "no-imports").get("voice-campplus")
    phone = pack.operating_point(channel="narrowband").threshold
    assert phone > pack.operating_point().threshold
    mixed = client.compare_voices(reference, variants["mulaw-8k"]).match
    assert mixed.threshold == pytest.approx(pack.operating_point().threshold)
    phone_reference = client.audio(
        mulaw_encode(load(MALE[1], 8000)), encoding="MULAW", sample_rate_hz=8000
    )
    for name in ("pcm16-8k", "mulaw-8k", "alaw-8k"):
        both = client.compare_voices(phone_reference, variants[name]).match
        assert both.operating_point == pack.default_operating_point
        assert both.threshold == pytest.approx(phone) and both.decision == common_pb2.ACCEPT
    # The other channel of that recording is silent: no speech to compare.
    expect(
        grpc.StatusCode.INVALID_ARGUMENT,
        client.compare_voices,
        reference,
        client.audio(wav_bytes(stereo, 44100), channel=1),
    )


@pytest.mark.parametrize(
    "make, words",
    [
        (lambda: b"", "empty"),
        (lambda: b"definitely not audio, just text" * 10, ""),
        (lambda: wav_bytes(np.zeros(16000 * 3, np.float32), 16000), "speech"),
        (
            lambda: wav_bytes(
                np.random.default_rng(0).normal(0, 0.3, 16000 * 3).astype(np.float32), 16000
            ),
            "speech",
        ),
        (lambda: MALE[0].read_bytes()[:60], ""),
    ],
    ids=["empty", "text", "silence", "white-noise", "truncated-header"],
)
def test_bad_audio_is_invalid_argument(client: BioverifyClient, make: object, words: str) -> None:
    message = expect(
        grpc.StatusCode.INVALID_ARGUMENT,
        client.compare_voices,
        client.audio(MALE[0].read_bytes()),
        client.audio(make()),  # type: ignore[operator]
    )
    assert message.startswith("clip_b") and words in message


def test_wrongly_declared_rate_and_raw_without_rate(client: BioverifyClient) -> None:
    message = expect(
        grpc.StatusCode.INVALID_ARGUMENT,
        client.compare_voices,
        client.audio(MALE[0].read_bytes()),
        client.audio(MALE[1].read_bytes(), sample_rate_hz=8000),  # the FLAC says 16 kHz
    )
    assert "16000" in message
    expect(
        grpc.StatusCode.INVALID_ARGUMENT,
        client.compare_voices,
        client.audio(MALE[0].read_bytes()),
        client.audio(b"\x00\x01" * 8000, encoding="PCM_S16LE"),
    )


def test_two_hour_audio_is_resource_exhausted(client: BioverifyClient) -> None:
    # Two hours of 8 kHz FLAC silence compress to ~180 kB: small on the wire, huge decoded.
    buf = io.BytesIO()
    with sf.SoundFile(buf, "w", 8000, 1, format="FLAC", subtype="PCM_16") as f:
        minute = np.zeros(8000 * 60, np.int16)
        for _ in range(120):
            f.write(minute)
    assert len(buf.getvalue()) < 1_000_000
    message = expect(
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        client.compare_voices,
        client.audio(MALE[0].read_bytes()),
        client.audio(buf.getvalue()),
    )
    assert "300" in message  # names the limit in seconds


def test_enroll_verify_and_erase_voice(client: BioverifyClient) -> None:
    silence = client.audio(wav_bytes(np.zeros(16000 * 2, np.float32), 16000))
    clips = [client.audio(p.read_bytes()) for p in LIBRI[:3]] + [silence]
    reply = client.enroll_voice("cfo-voice", clips, metadata={"role": "CFO"})
    assert reply.accepted_count == 3 and reply.rejected_count == 1
    assert reply.samples[3].reasons[0].code == "NOT_ENOUGH_SPEECH"
    assert reply.total_net_speech_seconds > 5
    assert reply.template.modality == common_pb2.VOICE and reply.template.sample_count == 3

    genuine = client.verify_voice("cfo-voice", client.audio(LIBRI[5].read_bytes()))
    assert genuine.decision == common_pb2.ACCEPT
    impostor = client.verify_voice("cfo-voice", client.audio(MALE[4].read_bytes()))
    assert impostor.decision == common_pb2.REJECT
    subject = client.get_subject("cfo-voice")
    assert [t.modality for t in subject.templates] == [common_pb2.VOICE]

    client.delete_subject("cfo-voice")
    nothing = client.enroll_voice("nobody-voice", [silence, silence])
    assert nothing.accepted_count == 0 and not nothing.HasField("template")
    assert [r.code for r in nothing.reasons] == ["NO_SAMPLE_ACCEPTED"]
    expect(
        grpc.StatusCode.NOT_FOUND,
        client.verify_voice,
        "cfo-voice",
        client.audio(LIBRI[5].read_bytes()),
    )


def test_enroll_without_enough_speech_writes_nothing(client: BioverifyClient) -> None:
    short = client.audio(wav_bytes(load(MALE[0])[: int(16000 * 1.2)], 16000))
    reply = client.enroll_voice("too-short", [short])
    assert not reply.HasField("template")
    expect(grpc.StatusCode.NOT_FOUND, client.get_subject, "too-short")


def _stream_chunks(wave8: np.ndarray, ms: int = 20) -> list[bytes]:
    data = mulaw_encode(wave8)
    step = 8 * ms
    return [data[i : i + step] for i in range(0, len(data), step)]


def test_live_call_stream_interim_and_final(client: BioverifyClient) -> None:
    client.enroll_voice("exec-1", [client.audio(p.read_bytes()) for p in LIBRI[:3]])
    call = concat(LIBRI[4:8], 8000)  # ~20 s of the executive talking, as a phone line carries it
    replies = list(
        client.verify_voice_stream(
            "exec-1",
            _stream_chunks(call),
            encoding="MULAW",
            sample_rate_hz=8000,
            interim_every_speech_seconds=4.0,
        )
    )
    interim, final = replies[:-1], replies[-1]
    assert len(interim) >= 3 and not any(r.final for r in interim) and final.final
    speech = [r.net_speech_seconds for r in replies]
    assert speech == sorted(speech) and final.net_speech_seconds > 0.5 * final.call_seconds
    assert final.call_seconds == pytest.approx(call.size / 8000, abs=0.05)
    assert final.decision == common_pb2.ACCEPT and final.match.confidence > 0.5
    # The running synthetic-speech assessment is reported on every stream (it blocks only
    # when liveness is required); on an 8 kHz line it says the high band was not there.
    assert final.liveness.checked and final.liveness.observe_only
    assert "stream_bandwidth" in {c.name for c in final.liveness.checks}

    impostor_call = concat(MALE[:6], 8000)
    last = list(
        client.verify_voice_stream(
            "exec-1", _stream_chunks(impostor_call), encoding="MULAW", sample_rate_hz=8000
        )
    )[-1]
    assert last.final and last.decision == common_pb2.REJECT
    client.delete_subject("exec-1")


def test_stream_protocol_errors(client: BioverifyClient) -> None:
    client.enroll_voice("exec-2", [client.audio(p.read_bytes()) for p in LIBRI[:2]])
    voice = client.voice

    def run(messages: list[voice_pb2.VoiceStreamRequest]) -> grpc.RpcError:
        with pytest.raises(grpc.RpcError) as info:
            list(voice.VerifyVoiceStream(iter(messages), timeout=60))
        return info.value

    config = voice_pb2.VoiceStreamConfig(
        subject_id="exec-2", encoding=voice_pb2.MULAW, sample_rate_hz=8000
    )
    audio = voice_pb2.VoiceStreamRequest(audio=b"\xff" * 160)
    err = run([audio])
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and "config" in err.details()
    err = run(
        [
            voice_pb2.VoiceStreamRequest(config=config),
            audio,
            voice_pb2.VoiceStreamRequest(config=config),
        ]
    )
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and "change" in err.details()
    err = run(
        [
            voice_pb2.VoiceStreamRequest(config=config),
            voice_pb2.VoiceStreamRequest(audio=b"\xff" * (128 * 1024)),
        ]
    )
    assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    bad_rate = voice_pb2.VoiceStreamConfig(
        subject_id="exec-2", encoding=voice_pb2.MULAW, sample_rate_hz=11025
    )
    assert (
        run([voice_pb2.VoiceStreamRequest(config=bad_rate)]).code()
        == grpc.StatusCode.INVALID_ARGUMENT
    )
    container = voice_pb2.VoiceStreamConfig(subject_id="exec-2", sample_rate_hz=8000)
    assert (
        run([voice_pb2.VoiceStreamRequest(config=container)]).code()
        == grpc.StatusCode.INVALID_ARGUMENT
    )
    unknown = voice_pb2.VoiceStreamConfig(
        subject_id="nobody", encoding=voice_pb2.MULAW, sample_rate_hz=8000
    )
    assert run([voice_pb2.VoiceStreamRequest(config=unknown)]).code() == grpc.StatusCode.NOT_FOUND


def test_stream_stopping_mid_sample_and_silence_only(client: BioverifyClient) -> None:
    client.enroll_voice("exec-3", [client.audio(p.read_bytes()) for p in LIBRI[:2]])
    pcm = (load(LIBRI[3], 8000) * 32767).astype(
        "<i2"
    ).tobytes() + b"\x01"  # half a sample at the end
    chunks = [pcm[i : i + 321] for i in range(0, len(pcm), 321)]  # odd sizes split samples
    final = list(
        client.verify_voice_stream("exec-3", chunks, encoding="PCM_S16LE", sample_rate_hz=8000)
    )[-1]
    assert final.final and final.decision == common_pb2.ACCEPT
    quiet = [b"\xff" * 160] * 200  # 4 s of mu-law silence
    final = list(
        client.verify_voice_stream("exec-3", quiet, encoding="MULAW", sample_rate_hz=8000)
    )[-1]
    assert final.final and final.decision == common_pb2.RETRY and not final.HasField("match")
    assert final.reasons[0].code == "NOT_ENOUGH_SPEECH"
    client.delete_subject("exec-3")


def test_phone_enrolled_subject_is_verified_at_telephone_thresholds(
    client: BioverifyClient,
) -> None:
    pack = PackCatalog(MODELS, MODELS / "no-imports").get("voice-campplus")

    def phone(path: Path) -> voice_pb2.Audio:
        return client.audio(mulaw_encode(load(path, 8000)), encoding="MULAW", sample_rate_hz=8000)

    client.enroll_voice("phone-1", [phone(p) for p in LIBRI[:2]], tenant="phone")
    by_phone = client.verify_voice("phone-1", phone(LIBRI[3]), tenant="phone").match
    assert by_phone.threshold == pytest.approx(pack.operating_point(channel="narrowband").threshold)
    assert by_phone.decision == common_pb2.ACCEPT
    by_app = client.verify_voice("phone-1", client.audio(LIBRI[4].read_bytes()), tenant="phone")
    assert by_app.match.threshold == pytest.approx(pack.operating_point().threshold)
    client.delete_subject("phone-1", tenant="phone")


def test_a_call_that_never_ends_is_cut_at_the_maximum_length(
    tmp_path: Path, models_dir: Path
) -> None:
    """A stream that keeps sending past ``max_call_seconds`` gets RESOURCE_EXHAUSTED; the
    server stays up for the next call."""
    with custom_service(tmp_path, models_dir, max_call_seconds=3.0) as short:
        short.enroll_voice("exec-4", [short.audio(p.read_bytes()) for p in LIBRI[:2]])

        def endless() -> Iterator[bytes]:
            while True:  # 20 ms of mu-law silence, forever
                yield b"\xff" * 160

        with pytest.raises(BioverifyClientError) as info:
            list(
                short.verify_voice_stream(
                    "exec-4", endless(), encoding="MULAW", sample_rate_hz=8000
                )
            )
        assert info.value.code == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "maximum length" in info.value.message
        call = mulaw_encode(load(LIBRI[3], 8000))
        chunks = [call[i : i + 160] for i in range(0, min(len(call), 2 * 8000), 160)]
        final = list(
            short.verify_voice_stream("exec-4", chunks, encoding="MULAW", sample_rate_hz=8000)
        )[-1]
        assert final.final


def test_a_service_without_a_voice_pack_says_so(tmp_path: Path, models_dir: Path) -> None:
    with custom_service(tmp_path, models_dir, voice_pack="none") as faces_only:
        clip = faces_only.audio(LIBRI[0].read_bytes())
        with pytest.raises(BioverifyClientError) as info:
            faces_only.compare_voices(clip, clip)
        assert info.value.code == grpc.StatusCode.UNIMPLEMENTED
        assert "CompareVoices" in info.value.message
        assert "without a voice model pack" in info.value.message
