"""Decoding of containers, raw PCM and G.711; limits; bad input; resampling quality."""

from __future__ import annotations

import io
import struct
import tracemalloc
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import soundfile as sf

from bioverify.errors import InvalidAudio, TooLarge
from bioverify.server.app import audio_limits
from bioverify.settings import Settings
from bioverify.voice.audio_decode import (
    AudioEncoding,
    AudioLimits,
    BlockResampler,
    DecodedAudio,
    alaw_decode,
    alaw_encode,
    decode_audio,
    mulaw_decode,
    mulaw_encode,
    resample,
    sniff_container,
)
from bioverify.voice.quality import clipping_fraction
from tests.long_audio import long_flac, peak_bytes_of

Clip = tuple[np.ndarray, int]
Encode = Callable[..., bytes]


def _snr_db(ref: np.ndarray, test: np.ndarray) -> float:
    n = min(ref.size, test.size)
    err = ref[:n] - test[:n]
    return float(10 * np.log10(np.sum(ref[:n] ** 2) / (np.sum(err**2) + 1e-20)))


# --- containers -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "subtype", "min_snr_db"),
    [
        ("WAV", "PCM_16", 80.0),
        ("WAV", "FLOAT", 80.0),
        ("WAV", "ULAW", 30.0),
        ("FLAC", "PCM_16", 80.0),
        ("OGG", "VORBIS", None),
        ("MP3", "MPEG_LAYER_III", None),
    ],
)
def test_container_formats_decode_to_the_same_speech(
    container: Encode,
    speech: Clip,
    limits: AudioLimits,
    fmt: str,
    subtype: str,
    min_snr_db: float | None,
) -> None:
    wave, rate = speech
    data = container(wave, rate, fmt, subtype)
    assert sniff_container(data) == fmt
    out = decode_audio(data, encoding=AudioEncoding.AUTO, limits=limits)
    assert out.encoding == fmt
    assert out.sample_rate_hz == rate
    assert out.input_channels == 1
    assert out.samples.dtype == np.float32
    assert abs(out.samples.size - wave.size) <= 2000  # lossy codecs pad a little
    assert out.duration_s == pytest.approx(out.samples.size / rate)
    if min_snr_db is not None:
        assert _snr_db(wave, out.samples) > min_snr_db
    else:  # lossy codecs may delay the signal: compare the spectral envelope instead
        spec_in = np.abs(np.fft.rfft(wave[: rate * 4]))
        spec_out = np.abs(np.fft.rfft(out.samples[: rate * 4]))
        assert np.corrcoef(np.log1p(spec_in[:16000]), np.log1p(spec_out[:16000]))[0, 1] > 0.8


def test_container_declared_rate_and_channels_that_agree_are_accepted(
    container: Encode, speech: Clip, limits: AudioLimits
) -> None:
    wave, rate = speech
    out = decode_audio(
        container(wave, rate, "WAV"),
        encoding=AudioEncoding.CONTAINER,
        sample_rate_hz=rate,
        channels=1,
        limits=limits,
    )
    assert out.sample_rate_hz == rate


def test_stereo_channel_pick_and_mixdown(
    container: Encode, speech: Clip, limits: AudioLimits
) -> None:
    wave, rate = speech
    other = np.roll(wave, 4000) * 0.5
    stereo = np.stack([other, wave], axis=1)
    data = container(stereo, rate, "FLAC", "PCM_16")
    right = decode_audio(data, channel=1, limits=limits)
    left = decode_audio(data, channel=0, limits=limits)
    mixed = decode_audio(data, limits=limits)
    assert right.input_channels == 2
    assert _snr_db(wave, right.samples) > 80
    assert _snr_db(other, left.samples) > 60
    np.testing.assert_allclose(mixed.samples, (left.samples + right.samples) / 2, atol=1e-6)
    with pytest.raises(InvalidAudio, match="channel 2 was requested but the audio has 2"):
        decode_audio(data, channel=2, limits=limits)


def test_eight_khz_container(container: Encode, speech: Clip, limits: AudioLimits) -> None:
    wave, rate = speech
    narrow = resample(wave, rate, 8000)
    out = decode_audio(container(narrow, 8000, "WAV"), limits=limits)
    assert out.sample_rate_hz == 8000
    assert out.samples.size == narrow.size


# --- raw PCM and G.711 --------------------------------------------------------------------


@pytest.mark.parametrize("rate", [8000, 16000])
def test_raw_pcm16(speech: Clip, limits: AudioLimits, rate: int) -> None:
    wave, src_rate = speech
    wave = resample(wave, src_rate, rate)
    pcm = np.clip(np.round(wave * 32768), -32768, 32767).astype("<i2")
    out = decode_audio(
        pcm.tobytes(), encoding="PCM_S16LE", sample_rate_hz=rate, channels=1, limits=limits
    )
    assert out.encoding == "PCM_S16LE"
    assert out.sample_rate_hz == rate
    np.testing.assert_array_equal(out.samples, pcm.astype(np.float32) / 32768)
    assert out.duration_s == pytest.approx(pcm.size / rate)


def test_raw_pcm16_stereo_channel_pick(limits: AudioLimits) -> None:
    frames = np.array([[1, -1], [2, -2], [3, -3]], dtype="<i2") * 1000
    data = frames.tobytes()
    args = {"encoding": AudioEncoding.PCM_S16LE, "sample_rate_hz": 8000, "channels": 2}
    right = decode_audio(data, channel=1, limits=limits, **args)  # type: ignore[arg-type]
    mixed = decode_audio(data, limits=limits, **args)  # type: ignore[arg-type]
    np.testing.assert_array_equal(right.samples * 32768, [-1000, -2000, -3000])
    np.testing.assert_array_equal(mixed.samples, [0, 0, 0])
    assert right.input_channels == 2


def test_g711_golden_values() -> None:
    # ITU-T G.711 on the 16-bit scale: mu-law 0xFF and 0x7F are +0 and -0, 0x00/0x80 the
    # extremes; A-law 0xD5/0x55 are the smallest magnitudes, 0xAA/0x2A the largest.
    mu = mulaw_decode(bytes([0xFF, 0x7F, 0x00, 0x80, 0xFE, 0xEF])) * 32768
    np.testing.assert_array_equal(mu, [0, 0, -32124, 32124, 8, 132])
    a = alaw_decode(bytes([0xD5, 0x55, 0xAA, 0x2A, 0xD4, 0xC5])) * 32768
    np.testing.assert_array_equal(a, [8, -8, 32256, -32256, 24, 264])
    assert mulaw_encode(np.array([0.0, -32124 / 32768, 32124 / 32768, 1.0, -1.0])) == bytes(
        [0xFF, 0x00, 0x80, 0x80, 0x00]
    )
    assert alaw_encode(np.array([0.0, 8 / 32768, -8 / 32768, 1.0, -1.0])) == bytes(
        [0xD5, 0xD5, 0x55, 0xAA, 0x2A]
    )


def test_g711_round_trip_of_every_code() -> None:
    codes = bytes(range(256))
    mu = mulaw_encode(mulaw_decode(codes))
    # mu-law has two zeros (0xFF, 0x7F); the encoder maps zero to 0xFF
    assert mu == bytes(0xFF if c == 0x7F else c for c in codes)
    assert alaw_encode(alaw_decode(codes)) == codes


def test_g711_matches_cpython_audioop() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        audioop = pytest.importorskip("audioop")
    codes = bytes(range(256))
    np.testing.assert_array_equal(
        mulaw_decode(codes) * 32768, np.frombuffer(audioop.ulaw2lin(codes, 2), "<i2")
    )
    np.testing.assert_array_equal(
        alaw_decode(codes) * 32768, np.frombuffer(audioop.alaw2lin(codes, 2), "<i2")
    )
    pcm = np.arange(-32768, 32768, dtype="<i2")
    wave = pcm.astype(np.float32) / 32768
    assert mulaw_encode(wave) == audioop.lin2ulaw(pcm.tobytes(), 2)
    assert alaw_encode(wave) == audioop.lin2alaw(pcm.tobytes(), 2)


@pytest.mark.parametrize(
    ("encoding", "enc_fn", "dec_fn"),
    [("MULAW", mulaw_encode, mulaw_decode), ("ALAW", alaw_encode, alaw_decode)],
)
def test_g711_telephone_round_trip(
    speech: Clip, limits: AudioLimits, encoding: str, enc_fn: object, dec_fn: object
) -> None:
    wave, rate = speech
    narrow = resample(wave, rate, 8000)
    data = enc_fn(narrow)  # type: ignore[operator]
    assert len(data) == narrow.size
    out = decode_audio(data, encoding=encoding, sample_rate_hz=8000, limits=limits)
    np.testing.assert_array_equal(out.samples, dec_fn(data))  # type: ignore[operator]
    assert out.encoding == encoding
    assert 30 < _snr_db(narrow, out.samples) < 45  # G.711 gives about 38 dB on speech


# --- bad input ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("payload", "kwargs", "message"),
    [
        (b"", {}, "empty"),
        (b"hello, this is not audio at all", {}, "not a WAV, FLAC, OGG or MP3"),
        (bytes(np.random.default_rng(0).integers(0, 256, 4000, dtype=np.uint8)), {}, "not a WAV"),
        (b"fLaC" + bytes(30), {}, "corrupted or truncated"),
        (b"RIFF\x24\x00\x00\x00WAVEfmt ", {}, "corrupted or truncated"),
        (b"\x01\x02\x03", {"encoding": "PCM_S16LE", "sample_rate_hz": 16000}, "multiple of 2"),
        (
            b"\x01\x02\x03\x04\x05\x06",
            {"encoding": "PCM_S16LE", "channels": 2, "sample_rate_hz": 8000},
            "multiple of 4 bytes",
        ),
        (b"\x00\x00", {"encoding": "PCM_S16LE"}, "sample rate declared"),
        (b"\xff\xff", {"encoding": "MULAW"}, "normally 8000 Hz"),
        (b"\x00\x00", {"encoding": "ALAW", "sample_rate_hz": 4000}, "4000 Hz is not supported"),
        (b"\x00\x00", {"encoding": "PCM_S16LE", "sample_rate_hz": 384000}, "not supported"),
        (b"\x00\x00", {"encoding": "OPUS_RAW"}, "unknown audio encoding"),
        (b"\x00\x00", {"encoding": "PCM_S16LE", "sample_rate_hz": 8000, "channel": 1}, "channel"),
        (b"\x00\x00", {"encoding": "MULAW", "sample_rate_hz": 8000, "channels": 0}, "channel"),
    ],
)
def test_bad_input_is_invalid_audio(
    limits: AudioLimits, payload: bytes, kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(InvalidAudio, match=message):
        decode_audio(payload, limits=limits, **kwargs)


def test_truncated_flac(container: Encode, speech: Clip, limits: AudioLimits) -> None:
    wave, rate = speech
    data = container(wave, rate, "FLAC", "PCM_16")
    with pytest.raises(InvalidAudio, match="FLAC") as header_cut:
        decode_audio(data[:60], limits=limits)
    with pytest.raises(InvalidAudio, match="corrupted") as body_cut:
        decode_audio(data[: len(data) // 2], limits=limits)
    for err in (header_cut.value, body_cut.value):  # no libsndfile internals in the message
        assert "BytesIO" not in str(err)
        assert "Error" not in str(err)


def test_wrongly_declared_container_rate(
    container: Encode, speech: Clip, limits: AudioLimits
) -> None:
    wave, rate = speech
    with pytest.raises(InvalidAudio, match="declared sample rate 8000 Hz contradicts the 16000"):
        decode_audio(container(wave, rate, "WAV"), sample_rate_hz=8000, limits=limits)
    with pytest.raises(InvalidAudio, match="declared channel count 2 contradicts the 1"):
        decode_audio(container(wave, rate, "WAV"), channels=2, limits=limits)


def test_unsupported_container_rate(container: Encode, limits: AudioLimits) -> None:
    data = container(np.zeros(400, np.float32), 4000, "WAV")
    with pytest.raises(InvalidAudio, match="4000 Hz is not supported"):
        decode_audio(data, limits=limits)


def test_non_finite_float_wav(container: Encode, limits: AudioLimits) -> None:
    wave = np.zeros(800, np.float32)
    wave[10] = np.nan
    with pytest.raises(InvalidAudio, match="not finite"):
        decode_audio(container(wave, 8000, "WAV", "FLOAT"), limits=limits)


def test_too_many_bytes(limits: AudioLimits) -> None:
    small = AudioLimits(max_bytes=1000, max_duration_s=60)
    with pytest.raises(TooLarge, match="1001 bytes"):
        decode_audio(bytes(1001), encoding="MULAW", sample_rate_hz=8000, limits=small)


def test_raw_audio_too_long() -> None:
    tight = AudioLimits(max_bytes=10**6, max_duration_s=1.0)
    with pytest.raises(TooLarge, match=r"lasts 1\.5 s"):
        decode_audio(bytes(12000), encoding="MULAW", sample_rate_hz=8000, limits=tight)


def test_two_hour_flac_header_is_too_large_without_decoding(
    container: Encode, limits: AudioLimits
) -> None:
    """A FLAC whose STREAMINFO announces 2 h is refused from the header alone."""
    data = bytearray(container(np.zeros(8000, np.float32), 8000, "FLAC", "PCM_16"))
    assert data[:4] == b"fLaC" and data[4] & 0x7F == 0  # STREAMINFO first
    # bytes 18..25: sample rate (20 bits), channels-1 (3), bits-1 (5), total samples (36)
    packed = int.from_bytes(data[18:26], "big")
    packed = (packed & ~((1 << 36) - 1)) | (2 * 3600 * 8000)
    data[18:26] = packed.to_bytes(8, "big")
    assert sf.info(io.BytesIO(bytes(data))).duration == pytest.approx(7200)
    tracemalloc.start()
    try:
        with pytest.raises(TooLarge, match=r"lasts 7200\.0 s"):
            decode_audio(bytes(data), limits=limits)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 5_000_000


def test_flac_of_unknown_length(container: Encode, limits: AudioLimits) -> None:
    data = bytearray(container(np.zeros(8000, np.float32), 8000, "FLAC", "PCM_16"))
    packed = int.from_bytes(data[18:26], "big") & ~((1 << 36) - 1)  # total samples 0: unknown
    data[18:26] = packed.to_bytes(8, "big")
    with pytest.raises(InvalidAudio, match="does not state the length"):
        decode_audio(bytes(data), limits=limits)


def test_wav_header_size_field_larger_than_payload(limits: AudioLimits) -> None:
    """A WAV header claiming a huge data chunk decodes only the bytes actually present."""
    fmt_chunk = struct.pack("<4sIHHIIHH", b"fmt ", 16, 1, 1, 8000, 16000, 2, 16)
    header = b"RIFF" + struct.pack("<I", 0xFFFFFFF0) + b"WAVE" + fmt_chunk
    data = header + b"data" + struct.pack("<I", 0xFFFFFF00) + bytes(1600)
    out = decode_audio(data, limits=limits)
    assert out.samples.size == 800


# --- decoding for a working rate ------------------------------------------------------------

SERVICE_LIMITS = audio_limits(Settings())
"""The service's default limits (MAX_AUDIO_BYTES, MAX_AUDIO_SECONDS)."""


@pytest.mark.parametrize(
    ("rate", "channels", "channel", "fmt", "gain"),
    [
        (16000, 1, None, "FLAC", 1.0),
        (8000, 1, None, "WAV", 1.0),
        (44100, 2, None, "WAV", 1.0),
        (48000, 2, 1, "FLAC", 1.0),
        (96000, 1, None, "WAV", 1.0),
        (44100, 1, None, "WAV", 8.0),  # clipped
        (22050, 3, None, "WAV", 1.0),
    ],
)
def test_working_rate_decode_is_the_native_decode_resampled(
    container: Encode,
    speech: Clip,
    limits: AudioLimits,
    rate: int,
    channels: int,
    channel: int | None,
    fmt: str,
    gain: float,
) -> None:
    """Decoding for 16 kHz gives exactly what resampling the input-rate decode gives, with
    the clipping of the input-rate samples."""
    wave, src_rate = speech
    wave = np.clip(resample(wave, src_rate, rate) * gain, -1.0, 1.0)
    frames = np.stack([np.roll(wave, 1000 * c) * (1 - 0.2 * c) for c in range(channels)], 1)
    data = container(frames, rate, fmt)
    native = decode_audio(data, channel=channel, limits=limits)
    working = decode_audio(data, channel=channel, limits=limits, working_rate_hz=16000)
    np.testing.assert_array_equal(working.samples, resample(native.samples, rate, 16000))
    assert working.samples_rate_hz == working.working_rate_hz == 16000
    assert (working.sample_rate_hz, working.input_channels) == (rate, channels)
    assert working.duration_s == native.duration_s
    assert working.encoding == native.encoding == fmt
    assert working.input_clipping == clipping_fraction(native.samples, rate)
    assert (working.input_clipping > 0.01) == (gain > 1)
    assert native.working_rate_hz is None and native.input_clipping is None
    unmeasured = decode_audio(
        data, channel=channel, limits=limits, working_rate_hz=16000, measure_clipping=False
    )
    np.testing.assert_array_equal(unmeasured.samples, working.samples)
    assert unmeasured.input_clipping is None


@pytest.mark.parametrize(
    ("encoding", "rate", "channels", "channel"),
    [("MULAW", 8000, 1, None), ("ALAW", 8000, 2, 1), ("PCM_S16LE", 16000, 2, None)],
)
def test_working_rate_decode_of_raw_audio(
    speech: Clip,
    limits: AudioLimits,
    encoding: str,
    rate: int,
    channels: int,
    channel: int | None,
) -> None:
    wave, src_rate = speech
    wave = resample(wave, src_rate, rate)
    interleaved = np.stack([wave * (1 - 0.5 * c) for c in range(channels)], 1).reshape(-1)
    if encoding == "PCM_S16LE":
        data = np.clip(np.round(interleaved * 32768), -32768, 32767).astype("<i2").tobytes()
    else:
        data = (mulaw_encode if encoding == "MULAW" else alaw_encode)(interleaved)
    args: dict[str, Any] = {"encoding": encoding, "sample_rate_hz": rate, "channels": channels}
    native = decode_audio(data, channel=channel, limits=limits, **args)
    working = decode_audio(data, channel=channel, limits=limits, working_rate_hz=16000, **args)
    np.testing.assert_array_equal(working.samples, resample(native.samples, rate, 16000))
    assert working.sample_rate_hz == rate and working.encoding == encoding
    assert working.input_clipping == clipping_fraction(native.samples, rate)


def test_299_s_at_192_khz_decodes_in_the_memory_of_its_16_khz_samples() -> None:
    """A 180 KB FLAC announcing 299 s at 192 kHz (57 M samples, 230 MB as float32 at its own
    rate): decoded for 16 kHz it costs its 19 MB of 16 kHz samples and one block. A 1 kHz
    burst at 100-101 s comes through; a 30 kHz one (above the 8 kHz of the working rate) is
    filtered out."""
    rate = 192000

    def bursts(start: int, n: int) -> np.ndarray:
        t = np.arange(start, start + n) / rate
        low = np.where((t >= 100) & (t < 101), 0.5 * np.sin(2 * np.pi * 1000 * t), 0.0)
        high = np.where((t >= 200) & (t < 201), 0.5 * np.sin(2 * np.pi * 30000 * t), 0.0)
        return (low + high).astype(np.float32)[:, None]

    data = long_flac(299.0, rate, 1, bursts)
    assert len(data) < 1_000_000
    decoded, peak = peak_bytes_of(
        lambda: decode_audio(data, limits=SERVICE_LIMITS, working_rate_hz=16000)
    )
    assert peak < 32_000_000  # 19.1 MB of output; 230 MB at the input's rate
    assert decoded.samples.size == 299 * 16000 and decoded.samples.dtype == np.float32
    assert (decoded.sample_rate_hz, decoded.input_channels) == (192000, 1)
    assert decoded.duration_s == pytest.approx(299.0) and decoded.input_clipping == 0.0
    tone = decoded.samples[100 * 16000 + 800 : 101 * 16000 - 800]
    assert np.sqrt(np.mean(tone**2)) == pytest.approx(0.5 / np.sqrt(2), rel=0.01)
    assert _peak_hz(tone, 16000) == pytest.approx(1000, abs=2)
    assert np.abs(decoded.samples[200 * 16000 + 800 : 201 * 16000 - 800]).max() < 1e-3
    quiet = np.r_[decoded.samples[: 99 * 16000], decoded.samples[102 * 16000 : 199 * 16000]]
    assert not quiet.any()


def test_eight_channels_at_192_khz_decode_in_bounded_memory() -> None:
    """37 s of 8 channels at 192 kHz (57 M samples in all, within the limit): one channel
    picked or all mixed down, the memory is that of the 16 kHz result plus one block."""
    rate, seconds = 192000, 37.0

    def channel_5_speaks(start: int, n: int) -> np.ndarray:
        frames = np.zeros((n, 8), np.float32)
        t = np.arange(start, start + n) / rate
        frames[:, 5] = 0.4 * np.sin(2 * np.pi * 440 * t)
        return frames

    data = long_flac(seconds, rate, 8, channel_5_speaks)
    for channel, level in ((5, 0.4), (None, 0.05), (0, 0.0)):

        def decode(channel: int | None = channel) -> DecodedAudio:
            return decode_audio(data, channel=channel, limits=SERVICE_LIMITS, working_rate_hz=16000)

        decoded, peak = peak_bytes_of(decode)
        assert peak < 8_000_000, channel  # 2.4 MB of output, 2 MB of 8-channel block
        assert decoded.samples.size == 37 * 16000 and decoded.input_channels == 8
        middle = decoded.samples[16000:-16000]
        assert np.sqrt(np.mean(middle**2)) == pytest.approx(level / np.sqrt(2), rel=0.01)


def test_many_channels_at_a_high_rate_are_too_large_from_the_header() -> None:
    """The decoding work grows with the samples of all channels: at most as many as the
    longest clip at the highest rate in mono (57.6 M), refused before decoding."""
    data = long_flac(40.0, 192000, 8)  # 61 M samples
    with pytest.raises(TooLarge, match=r"8 channels of 40\.0 s at 192000 Hz") as refused:
        decode_audio(data, limits=SERVICE_LIMITS)
    assert "57.6 million samples" in str(refused.value)
    assert "fewer channels" in str(refused.value)
    assert SERVICE_LIMITS.max_input_samples == 300 * 192000
    stereo = long_flac(150.0, 192000, 2)  # exactly at the limit: accepted
    decoded = decode_audio(stereo, limits=SERVICE_LIMITS, working_rate_hz=16000)
    assert decoded.samples.size == 150 * 16000


# --- resampling ---------------------------------------------------------------------------


def _tone(freq: float, rate: int, seconds: float = 1.0) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def _peak_hz(wave: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(wave * np.hanning(wave.size)))
    return float(np.argmax(spectrum) * rate / wave.size)


def test_resample_keeps_tone_frequency() -> None:
    out = resample(_tone(1000, 48000), 48000, 16000)
    assert out.dtype == np.float32
    assert out.size == 16000
    assert _peak_hz(out, 16000) == pytest.approx(1000, abs=2)
    assert np.sqrt(np.mean(out[1000:-1000] ** 2)) == pytest.approx(0.5 / np.sqrt(2), rel=0.01)


def test_resample_attenuates_above_new_nyquist() -> None:
    rate_in, rate_out = 44100, 8000
    tone = _tone(7000, rate_in)
    out = resample(tone, rate_in, rate_out)
    assert out.size == rate_out
    ratio = np.sqrt(np.mean(out[500:-500] ** 2)) / np.sqrt(np.mean(tone**2))
    assert 20 * np.log10(ratio) < -40


def test_resample_identity_and_empty() -> None:
    wave = _tone(440, 16000, 0.1)
    same = resample(wave, 16000, 16000)
    np.testing.assert_array_equal(same, wave)
    assert same is not wave
    assert resample(np.zeros(0, np.float32), 8000, 16000).size == 0
    with pytest.raises(ValueError, match="positive"):
        resample(wave, 0, 16000)


@pytest.mark.parametrize(
    "from_rate",
    [8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000, 88200, 96000, 176400, 192000],
)
def test_block_resampler_gives_resample_sample_for_sample(from_rate: int) -> None:
    """Golden: resampling block by block gives exactly what resampling the whole clip gives,
    however the blocks are cut (one sample, odd sizes, none at all), whatever the length."""
    rng = np.random.default_rng(from_rate)
    for n in (0, 1, 7, 333, 20011):
        wave = (0.3 * rng.standard_normal(n)).astype(np.float32)
        expected = resample(wave, from_rate, 16000)
        cuts_options = [[], [1], sorted(rng.integers(0, n + 1, 9).tolist()), list(range(1, n, 997))]
        for cuts in cuts_options:
            blocks = BlockResampler(from_rate, 16000)
            parts = [blocks.push(block) for block in np.split(wave, cuts)] + [blocks.finish()]
            out = np.concatenate(parts)
            assert out.dtype == np.float32
            assert blocks.output_length(n) == out.size == expected.size
            np.testing.assert_array_equal(out, expected)
