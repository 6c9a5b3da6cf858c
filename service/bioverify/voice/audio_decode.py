"""Decoding client audio into mono float32 samples.

Three families of input are accepted:

* containers (WAV, FLAC, OGG Vorbis/Opus, MP3), recognised by their magic bytes and decoded
  by libsndfile (``soundfile``) from memory; the header gives rate and channels;
* raw 16-bit little-endian PCM, where the caller declares rate and channels;
* raw G.711 (mu-law, A-law), decoded with lookup tables written here from ITU-T G.711,
  with the matching encoders (used to simulate a telephone channel in evaluation).

Limits are checked before samples are materialised: payload size first, then the duration
announced by the header (or implied by the byte count for raw formats). libsndfile never reads
past the header's frame count, so at most the announced (and accepted) length is allocated.

The service decodes for a working rate (the speaker encoder's, 16 kHz): frames are read in
blocks of at most ``_READ_BLOCK_FRAMES``, mixed down (or one channel picked), measured for
clipping at the input's rate and resampled block by block, so a clip costs its duration at the
working rate plus one block of input, whatever rate and channel count its header declares.
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from math import gcd
from typing import Any

import numpy as np
import numpy.typing as npt
import soundfile as sf
from scipy.signal import firwin, resample_poly, upfirdn

from bioverify.errors import InvalidAudio, TooLarge
from bioverify.voice.ports import Waveform
from bioverify.voice.quality import ClippingMeter

logger = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.floating[Any]]

_READ_BLOCK_FRAMES = 1 << 16
_UNKNOWN_LENGTH = 1 << 62  # libsndfile reports SF_COUNT_MAX when a stream's length is unknown


class AudioEncoding(StrEnum):
    """How the bytes of a request are encoded."""

    AUTO = "AUTO"
    """A container (WAV, FLAC, OGG, MP3) recognised by its magic bytes."""
    CONTAINER = "CONTAINER"
    """Same as AUTO: the client states that the payload is a container file."""
    PCM_S16LE = "PCM_S16LE"
    """Raw signed 16-bit little-endian PCM, interleaved; rate and channels declared."""
    MULAW = "MULAW"
    """Raw G.711 mu-law bytes (usually 8 kHz); rate and channels declared."""
    ALAW = "ALAW"
    """Raw G.711 A-law bytes (usually 8 kHz); rate and channels declared."""


@dataclass(frozen=True)
class AudioLimits:
    """What a request may contain. Sizes are checked before decoding."""

    max_bytes: int
    max_duration_s: float
    min_sample_rate: int = 8000
    max_sample_rate: int = 192000
    max_channels: int = 8

    @property
    def max_input_samples(self) -> int:
        """The most samples, all channels together, that one clip may hold: the longest clip
        at the highest rate in mono. Decoding costs CPU in proportion to them, so several
        channels at a high rate must make a shorter clip."""
        return int(self.max_duration_s * self.max_sample_rate)


@dataclass(frozen=True)
class DecodedAudio:
    """Mono float32 samples in [-1, 1], at the rate of the input or, when decoded for a
    working rate, at that rate."""

    samples: Waveform
    sample_rate_hz: int
    """The input's sample rate, as sent."""
    input_channels: int
    duration_s: float
    """The input's duration."""
    encoding: str
    """``WAV``, ``FLAC``, ``OGG``, ``MP3``, ``PCM_S16LE``, ``MULAW`` or ``ALAW``."""
    working_rate_hz: int | None = None
    """The rate ``samples`` were resampled to while decoding; None: they are at the input's."""
    input_clipping: float | None = None
    """:func:`~bioverify.voice.quality.clipping_fraction` of the mono input at its own rate
    (where clipped runs are intact), measured while decoding; None: not measured."""

    @property
    def samples_rate_hz(self) -> int:
        """The rate of ``samples``."""
        return self.working_rate_hz or self.sample_rate_hz


def decode_audio(
    data: bytes,
    *,
    encoding: AudioEncoding | str = AudioEncoding.AUTO,
    sample_rate_hz: int | None = None,
    channels: int | None = None,
    channel: int | None = None,
    limits: AudioLimits,
    working_rate_hz: int | None = None,
    measure_clipping: bool = True,
) -> DecodedAudio:
    """Decode ``data`` into mono float32 at its own sample rate, or at ``working_rate_hz``.

    ``sample_rate_hz`` and ``channels`` are required for raw formats (channels defaults to 1)
    and, when given for a container, must agree with its header. ``channel=None`` mixes all
    channels down; ``channel=k`` keeps channel ``k`` only (for example the caller's side of a
    stereo call recording). With ``working_rate_hz`` the samples are those :func:`resample`
    gives from the input's rate, produced block by block as the input is decoded (never held at
    the input's rate), and ``input_clipping`` is measured on the way (unless
    ``measure_clipping`` is False: for a caller that does not read it).

    Raises:
        InvalidAudio: empty, unrecognised, corrupted or wrongly declared audio.
        TooLarge: payload bigger than ``limits.max_bytes`` or longer than
            ``limits.max_duration_s``.
    """
    try:
        enc = AudioEncoding(encoding)
    except ValueError as exc:
        valid = ", ".join(e.value for e in AudioEncoding)
        raise InvalidAudio(f"unknown audio encoding {encoding!r}; expected one of {valid}") from exc
    if not data:
        raise InvalidAudio("the audio payload is empty")
    if len(data) > limits.max_bytes:
        raise TooLarge(
            f"the audio payload is {len(data)} bytes; at most {limits.max_bytes} are accepted"
        )
    if channels is not None and not 1 <= channels <= limits.max_channels:
        raise InvalidAudio(
            f"declared channel count {channels} is not supported (1 to {limits.max_channels})"
        )
    if channel is not None and channel < 0:
        raise InvalidAudio(f"channel index {channel} is negative")
    if working_rate_hz is not None and working_rate_hz <= 0:
        raise ValueError(f"the working rate must be positive, got {working_rate_hz}")
    working = _Working(working_rate_hz, measure_clipping) if working_rate_hz else None
    if enc in (AudioEncoding.AUTO, AudioEncoding.CONTAINER):
        return _decode_container(data, sample_rate_hz, channels, channel, limits, working)
    return _decode_raw(data, enc, sample_rate_hz, channels, channel, limits, working)


@dataclass(frozen=True)
class _Working:
    """What decoding at a working rate does on the way: resample to ``rate_hz``, and measure
    the input's clipping when ``clipping``."""

    rate_hz: int
    clipping: bool


def sniff_container(data: bytes) -> str | None:
    """Name of the container format announced by the magic bytes, or None."""
    if len(data) >= 12 and data[:4] in (b"RIFF", b"RF64", b"BW64") and data[8:12] == b"WAVE":
        return "WAV"
    if data[:4] == b"fLaC":
        return "FLAC"
    if data[:4] == b"OggS":
        return "OGG"
    if data[:3] == b"ID3":
        return "MP3"
    # MPEG audio frame sync: 11 set bits, then a version and a layer that are not "reserved".
    if (
        len(data) >= 2
        and data[0] == 0xFF
        and (data[1] & 0xE0) == 0xE0
        and (data[1] & 0x18) != 0x08
        and (data[1] & 0x06) != 0
    ):
        return "MP3"
    return None


def _check_rate(rate: int, limits: AudioLimits, what: str) -> None:
    if not limits.min_sample_rate <= rate <= limits.max_sample_rate:
        raise InvalidAudio(
            f"{what} sample rate {rate} Hz is not supported "
            f"({limits.min_sample_rate} to {limits.max_sample_rate} Hz)"
        )


def _check_duration(frames: int, rate: int, limits: AudioLimits) -> None:
    duration = frames / rate
    if duration > limits.max_duration_s:
        raise TooLarge(
            f"the audio lasts {duration:.1f} s; at most {limits.max_duration_s:g} s are accepted"
        )


def _check_input_samples(frames: int, n_channels: int, rate: int, limits: AudioLimits) -> None:
    if n_channels > 1 and frames * n_channels > limits.max_input_samples:  # mono: see duration
        raise TooLarge(
            f"the audio holds {n_channels} channels of {frames / rate:.1f} s at {rate} Hz; at "
            f"most {limits.max_input_samples / 1e6:.1f} million samples (all channels together, "
            f"as in {limits.max_duration_s:g} s of mono audio at {limits.max_sample_rate} Hz) "
            "are accepted: send fewer channels (the speaker's alone), a lower sample rate or a "
            "shorter clip"
        )


def _check_channel_index(channel: int | None, n_channels: int) -> None:
    if channel is not None and channel >= n_channels:
        raise InvalidAudio(
            f"channel {channel} was requested but the audio has {n_channels} channel(s)"
        )


def _decode_container(
    data: bytes,
    declared_rate: int | None,
    declared_channels: int | None,
    channel: int | None,
    limits: AudioLimits,
    working: _Working | None,
) -> DecodedAudio:
    fmt = sniff_container(data)
    if fmt is None:
        raise InvalidAudio(
            "the payload is not a WAV, FLAC, OGG or MP3 file; raw PCM or G.711 audio must be "
            "sent with its encoding and sample rate declared"
        )
    try:
        handle = sf.SoundFile(io.BytesIO(data))
    except (sf.SoundFileError, RuntimeError, ValueError, TypeError) as exc:
        logger.debug("libsndfile could not open a %s payload: %s", fmt, type(exc).__name__)
        raise InvalidAudio(
            f"could not read the {fmt} audio: the header is corrupted or truncated"
        ) from exc
    with handle:
        rate = int(handle.samplerate)
        n_channels = int(handle.channels)
        header_frames = int(handle.frames)
        _check_rate(rate, limits, f"the {fmt} file's")
        if declared_rate is not None and declared_rate != rate:
            raise InvalidAudio(
                f"the declared sample rate {declared_rate} Hz contradicts the {rate} Hz "
                f"in the {fmt} header"
            )
        if not 1 <= n_channels <= limits.max_channels:
            raise InvalidAudio(
                f"the {fmt} file has {n_channels} channels; 1 to {limits.max_channels} are "
                "supported"
            )
        if declared_channels is not None and declared_channels != n_channels:
            raise InvalidAudio(
                f"the declared channel count {declared_channels} contradicts the {n_channels} "
                f"in the {fmt} header"
            )
        _check_channel_index(channel, n_channels)
        if header_frames < 0 or header_frames >= _UNKNOWN_LENGTH:
            raise InvalidAudio(
                f"the {fmt} header does not state the length of the audio; send a complete file"
            )
        _check_duration(header_frames, rate, limits)
        _check_input_samples(header_frames, n_channels, rate, limits)
        mono = _MonoSamples(header_frames, rate, channel, working, f"the {fmt} file")
        _read_blocks(handle, fmt, header_frames, n_channels, mono)
    if mono.frames == 0:
        raise InvalidAudio(f"the {fmt} file contains no audio samples")
    return mono.decoded(rate, n_channels, fmt)


def _read_blocks(
    handle: sf.SoundFile, fmt: str, frames: int, n_channels: int, mono: _MonoSamples
) -> None:
    """Read ``frames`` frames into ``mono`` block by block, reusing one block buffer.

    ``frames`` is the header's count, already checked against the limits; soundfile never
    reads past it, and a stream that ends early yields fewer frames.
    """
    block = np.empty((min(_READ_BLOCK_FRAMES, frames), n_channels), dtype=np.float32)
    n = 0
    try:
        while n < frames:
            got = handle.read(out=block[: min(block.shape[0], frames - n)]).shape[0]
            if got == 0:
                break
            mono.add(block[:got])
            n += got
    except (sf.SoundFileError, RuntimeError, ValueError) as exc:
        logger.debug("libsndfile failed while decoding a %s payload: %s", fmt, type(exc).__name__)
        raise InvalidAudio(f"could not decode the {fmt} audio: the data is corrupted") from exc


class _MonoSamples:
    """Decoded frames (frames x channels) collected as mono samples, block by block: mixed
    down or one channel picked, checked, clipped to [-1, 1] and, for a working rate, measured
    for clipping and resampled on the way. The output is allocated once, for ``max_frames``
    input frames."""

    def __init__(
        self, max_frames: int, rate: int, channel: int | None, working: _Working | None, what: str
    ) -> None:
        self.channel = channel
        self.what = what
        self.frames = 0
        self.resampler = BlockResampler(rate, working.rate_hz) if working else None
        self.clipping = ClippingMeter(rate) if working and working.clipping else None
        capacity = self.resampler.output_length(max_frames) if self.resampler else max_frames
        self._out = np.empty(capacity, dtype=np.float32)
        self._written = 0

    def add(self, frames: npt.NDArray[np.float32]) -> None:
        if self.channel is not None:
            mono = np.array(frames[:, self.channel], dtype=np.float32)
        else:
            mono = _mix_down(frames)
        if not np.isfinite(mono).all():
            raise InvalidAudio(f"{self.what} contains samples that are not finite numbers")
        np.clip(mono, -1.0, 1.0, out=mono)
        self.frames += mono.size
        if self.clipping is not None:
            self.clipping.add(mono)
        self._write(self.resampler.push(mono) if self.resampler is not None else mono)

    def decoded(self, rate: int, n_channels: int, encoding: str) -> DecodedAudio:
        """The samples collected, once the input has ended."""
        if self.resampler is not None:
            self._write(self.resampler.finish())
        return DecodedAudio(
            samples=self._out[: self._written],
            sample_rate_hz=rate,
            input_channels=n_channels,
            duration_s=self.frames / rate,
            encoding=encoding,
            working_rate_hz=self.resampler.to_rate if self.resampler is not None else None,
            input_clipping=self.clipping.fraction() if self.clipping is not None else None,
        )

    def _write(self, samples: Waveform) -> None:
        self._out[self._written : self._written + samples.size] = samples
        self._written += samples.size


def _mix_down(frames: npt.NDArray[np.float32]) -> Waveform:
    """The mean of the channels, summed in channel order (what ``frames.mean(axis=1)`` gives
    for up to 7 channels, several times faster)."""
    mono = np.array(frames[:, 0], dtype=np.float32)
    for c in range(1, frames.shape[1]):
        mono += frames[:, c]
    if frames.shape[1] > 1:
        mono /= np.float32(frames.shape[1])
    return mono


def _decode_raw(
    data: bytes,
    enc: AudioEncoding,
    declared_rate: int | None,
    declared_channels: int | None,
    channel: int | None,
    limits: AudioLimits,
    working: _Working | None,
) -> DecodedAudio:
    if declared_rate is None:
        hint = " (G.711 telephone audio is normally 8000 Hz)" if enc != enc.PCM_S16LE else ""
        raise InvalidAudio(f"raw {enc.value} audio needs its sample rate declared{hint}")
    _check_rate(declared_rate, limits, "the declared")
    n_channels = declared_channels if declared_channels is not None else 1
    _check_channel_index(channel, n_channels)
    bytes_per_frame = n_channels * (2 if enc == AudioEncoding.PCM_S16LE else 1)
    if len(data) % bytes_per_frame:
        raise InvalidAudio(
            f"raw {enc.value} audio with {n_channels} channel(s) needs a multiple of "
            f"{bytes_per_frame} bytes; got {len(data)}"
        )
    n_frames = len(data) // bytes_per_frame
    _check_duration(n_frames, declared_rate, limits)
    _check_input_samples(n_frames, n_channels, declared_rate, limits)
    mono = _MonoSamples(n_frames, declared_rate, channel, working, f"the {enc.value} audio")
    if enc == AudioEncoding.PCM_S16LE:
        pcm = np.frombuffer(data, dtype="<i2").reshape(n_frames, n_channels)
        for start in range(0, n_frames, _READ_BLOCK_FRAMES):
            block = pcm[start : start + _READ_BLOCK_FRAMES]
            mono.add(block.astype(np.float32) * np.float32(1.0 / 32768.0))
    else:
        codes = np.frombuffer(data, dtype=np.uint8).reshape(n_frames, n_channels)
        table = _mulaw_decode_table() if enc == AudioEncoding.MULAW else _alaw_decode_table()
        for start in range(0, n_frames, _READ_BLOCK_FRAMES):
            mono.add(table[codes[start : start + _READ_BLOCK_FRAMES]])
    return mono.decoded(declared_rate, n_channels, enc.value)


# --- resampling -------------------------------------------------------------------------------


def resample(wave: Waveform, from_rate: int, to_rate: int) -> Waveform:
    """Polyphase resampling with scipy's Kaiser-windowed anti-aliasing FIR filter."""
    if from_rate <= 0 or to_rate <= 0:
        raise ValueError(f"sample rates must be positive, got {from_rate} and {to_rate}")
    wave = np.asarray(wave, dtype=np.float32)
    if from_rate == to_rate or wave.size == 0:
        return wave.copy() if from_rate == to_rate else np.zeros(0, np.float32)
    g = gcd(from_rate, to_rate)
    out = resample_poly(wave, to_rate // g, from_rate // g)
    return np.asarray(out, dtype=np.float32)


class BlockResampler:
    """:func:`resample` of a signal that arrives in blocks, with the same output: the filter
    ``resample_poly`` designs, applied (by ``upfirdn``) at the same phases to the same
    samples, but holding only the input that outputs still to come depend on.

    Output ``j`` is ``upfirdn``'s output ``j + skip`` of the whole signal, a sum over input
    samples ``ceil(((j + skip) * down - len(taps) + 1) / up)`` to ``floor((j + skip) * down /
    up)``. Each block's outputs are computed on a segment that starts at a multiple of
    ``down`` (so its phases are the whole signal's) and holds every input they depend on;
    past the end, zeros stand for ``resample_poly``'s zero padding.
    """

    def __init__(self, from_rate: int, to_rate: int) -> None:
        if from_rate <= 0 or to_rate <= 0:
            raise ValueError(f"sample rates must be positive, got {from_rate} and {to_rate}")
        self.from_rate, self.to_rate = from_rate, to_rate
        g = gcd(from_rate, to_rate)
        self.up, self.down = to_rate // g, from_rate // g
        self._received = 0  # input samples pushed
        self._emitted = 0  # output samples returned
        self._segment = np.zeros(0, dtype=np.float32)  # input still needed
        self._segment_start = 0  # its first sample's index in the input, a multiple of down
        self._taps = np.ones(1, dtype=np.float32)
        self._skip = 0
        if self.identity:
            return
        max_rate = max(self.up, self.down)
        half_len = 10 * max_rate
        # resample_poly's filter in float32 (the dtype of its input here), scaled by up and
        # zero-padded in front so that its outputs land on the input's sample times
        taps = firwin(2 * half_len + 1, 1.0 / max_rate, window=("kaiser", 5.0)).astype(np.float32)
        taps *= self.up
        pre_pad = self.down - half_len % self.down
        self._taps = np.concatenate([np.zeros(pre_pad, dtype=np.float32), taps])
        self._skip = (half_len + pre_pad) // self.down

    @property
    def identity(self) -> bool:
        return self.up == self.down

    def output_length(self, n_in: int) -> int:
        """How many samples ``n_in`` input samples give (as :func:`resample`)."""
        return -(-n_in * self.up // self.down)

    def push(self, block: Waveform) -> Waveform:
        """The output samples that ``block`` completes."""
        x = np.asarray(block, dtype=np.float32)
        self._received += x.size
        if self.identity:
            return x
        self._segment = np.concatenate([self._segment, x])
        # output j needs input up to floor((j + skip) * down / up), which must have arrived
        ready = (self._received * self.up - 1) // self.down + 1 - self._skip
        return self._emit(min(ready, self.output_length(self._received)))

    def finish(self) -> Waveform:
        """The remaining output samples, once the input has ended."""
        total = self.output_length(self._received)
        if self.identity or total <= self._emitted:
            return np.zeros(0, dtype=np.float32)
        last_needed = ((total - 1 + self._skip) * self.down) // self.up
        padding = max(0, last_needed + 1 - self._received)
        self._segment = np.concatenate([self._segment, np.zeros(padding, dtype=np.float32)])
        return self._emit(total)

    def _emit(self, end: int) -> Waveform:
        """Outputs ``_emitted`` to ``end`` (exclusive); then drop the input no longer needed."""
        if end <= self._emitted:
            return np.zeros(0, dtype=np.float32)
        offset = self._segment_start // self.down * self.up  # the segment's first output
        filtered = upfirdn(self._taps, self._segment, self.up, self.down)
        out = np.array(
            filtered[self._emitted + self._skip - offset : end + self._skip - offset],
            dtype=np.float32,
        )
        self._emitted = end
        first_needed = -(-((end + self._skip) * self.down - self._taps.size + 1) // self.up)
        start = min(max(first_needed, 0), self._received) // self.down * self.down
        if start > self._segment_start:
            self._segment = self._segment[start - self._segment_start :].copy()
            self._segment_start = start
        return out


# --- G.711 (ITU-T G.711; table-driven, after the public-domain Sun Microsystems g711.c) -------
#
# Both laws are defined on 13-bit (A-law) / 14-bit (mu-law) linear samples; here they are
# expressed on the 16-bit scale, so decoded values are multiples of 8 (A-law) or 4 (mu-law)
# and mu-law peaks at +/-32124, A-law at +/-32256.

_MULAW_BIAS = 0x84
_MULAW_CLIP_14 = 8159
_MULAW_SEG_END_14 = np.array([0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF])
_ALAW_SEG_END_13 = np.array([0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF])


@cache
def _mulaw_to_linear16() -> npt.NDArray[np.int16]:
    u = ~np.arange(256, dtype=np.int32) & 0xFF
    t = (((u & 0x0F) << 3) + _MULAW_BIAS) << ((u & 0x70) >> 4)
    return np.where(u & 0x80, _MULAW_BIAS - t, t - _MULAW_BIAS).astype(np.int16)


@cache
def _alaw_to_linear16() -> npt.NDArray[np.int16]:
    a = np.arange(256, dtype=np.int32) ^ 0x55
    seg = (a & 0x70) >> 4
    t = (a & 0x0F) << 4
    t = np.where(seg == 0, t + 8, (t + 0x108) << np.maximum(seg - 1, 0))
    return np.where(a & 0x80, t, -t).astype(np.int16)


@cache
def _mulaw_decode_table() -> npt.NDArray[np.float32]:
    return (_mulaw_to_linear16().astype(np.float32) / 32768.0).astype(np.float32)


@cache
def _alaw_decode_table() -> npt.NDArray[np.float32]:
    return (_alaw_to_linear16().astype(np.float32) / 32768.0).astype(np.float32)


@cache
def _mulaw_encode_table() -> npt.NDArray[np.uint8]:
    """mu-law code for every 16-bit sample, indexed by ``sample + 32768``."""
    val = np.arange(-32768, 32768, dtype=np.int32) >> 2
    mask = np.where(val < 0, 0x7F, 0xFF)
    mag = np.minimum(np.abs(val), _MULAW_CLIP_14) + (_MULAW_BIAS >> 2)
    seg = np.searchsorted(_MULAW_SEG_END_14, mag, side="left")
    code = (seg << 4) | ((mag >> (np.minimum(seg, 7) + 1)) & 0x0F)
    code = np.where(seg >= 8, 0x7F, code)
    return (code ^ mask).astype(np.uint8)


@cache
def _alaw_encode_table() -> npt.NDArray[np.uint8]:
    """A-law code for every 16-bit sample, indexed by ``sample + 32768``."""
    val = np.arange(-32768, 32768, dtype=np.int32) >> 3
    mask = np.where(val >= 0, 0xD5, 0x55)
    mag = np.where(val >= 0, val, -val - 1)
    seg = np.searchsorted(_ALAW_SEG_END_13, mag, side="left")
    shift = np.where(seg < 2, 1, np.minimum(seg, 7))
    code = (seg << 4) | ((mag >> shift) & 0x0F)
    code = np.where(seg >= 8, 0x7F, code)
    return (code ^ mask).astype(np.uint8)


def _to_pcm16_index(wave: FloatArray) -> npt.NDArray[np.int32]:
    pcm = np.clip(np.rint(np.asarray(wave, dtype=np.float64) * 32768.0), -32768, 32767)
    return pcm.astype(np.int32) + 32768


def mulaw_encode(wave: FloatArray) -> bytes:
    """G.711 mu-law bytes of a float waveform in [-1, 1] (values outside are clipped)."""
    return _mulaw_encode_table()[_to_pcm16_index(wave)].tobytes()


def alaw_encode(wave: FloatArray) -> bytes:
    """G.711 A-law bytes of a float waveform in [-1, 1] (values outside are clipped)."""
    return _alaw_encode_table()[_to_pcm16_index(wave)].tobytes()


def mulaw_decode(data: bytes) -> Waveform:
    """Float32 samples of G.711 mu-law bytes (full scale = 32768)."""
    return _mulaw_decode_table()[np.frombuffer(data, dtype=np.uint8)]


def alaw_decode(data: bytes) -> Waveform:
    """Float32 samples of G.711 A-law bytes (full scale = 32768)."""
    return _alaw_decode_table()[np.frombuffer(data, dtype=np.uint8)]
