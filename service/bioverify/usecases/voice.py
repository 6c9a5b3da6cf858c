"""Voice use cases: compare, enroll, verify, and verification over a live call stream."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from bioverify.errors import (
    BioverifyError,
    InvalidAudio,
    InvalidInput,
    ModelMismatch,
    NotImplementedYet,
    StreamProtocolError,
    TooLarge,
)
from bioverify.index.gallery import Gallery
from bioverify.liveness.ports import LivenessAssessment
from bioverify.packs import PackManifest
from bioverify.scoring import (
    Calibration,
    MatchResult,
    OperatingPoint,
    cosine_similarity,
    decide_match,
    l2_normalize,
)
from bioverify.store.ports import Template, TemplateStore
from bioverify.usecases.common import (
    DEFAULT_TENANT,
    InferencePool,
    Issue,
    RequestPolicy,
    sample_id,
    validate_metadata,
    validate_subject_id,
    validate_tenant,
)
from bioverify.usecases.gallery_search import (
    Duplicate,
    IdentifyResult,
    find_duplicates,
    identify,
)
from bioverify.usecases.liveness import LivenessGate, LivenessResult, spoof_issues
from bioverify.voice.audio_decode import (
    AudioEncoding,
    AudioLimits,
    DecodedAudio,
    alaw_decode,
    decode_audio,
    mulaw_decode,
)
from bioverify.voice.pipeline import VoicePipeline, VoiceSample
from bioverify.voice.quality import VoiceQualityReport
from bioverify.voice.stream_resample import StreamingResampler
from bioverify.voice.vad_silero import SileroVad

logger = logging.getLogger(__name__)

VOICE = "voice"
STREAM_SAMPLE_RATES = (8000, 12000, 16000, 24000, 32000, 48000)
RAW_ENCODINGS = (AudioEncoding.PCM_S16LE, AudioEncoding.MULAW, AudioEncoding.ALAW)


@dataclass(frozen=True)
class AudioInput:
    """One clip as the client sent it (proto-free)."""

    data: bytes
    encoding: AudioEncoding = AudioEncoding.AUTO
    sample_rate_hz: int | None = None
    channels: int | None = None
    channel: int | None = None


@dataclass(frozen=True)
class VoicePolicy:
    """Speech requirements, from settings."""

    min_verify_speech_s: float = 1.0
    min_enroll_clip_speech_s: float = 1.0
    min_enroll_total_speech_s: float = 2.0
    max_clips_per_enrollment: int = 20
    max_call_seconds: float = 3600.0
    max_stream_chunk_bytes: int = 64 * 1024
    interim_every_speech_s: float = 3.0


@dataclass(frozen=True)
class ClipReport:
    """Quality of one clip as reported to the client."""

    quality: VoiceQualityReport | None
    duration_s: float
    input_sample_rate_hz: int
    input_channels: int
    issues: tuple[Issue, ...]

    @property
    def acceptable(self) -> bool:
        return not self.issues


@dataclass(frozen=True)
class CompareVoicesOutcome:
    match: MatchResult
    model: str
    clip_a: ClipReport
    clip_b: ClipReport
    retry: tuple[Issue, ...]
    liveness_a: LivenessResult | None = None
    liveness_b: LivenessResult | None = None


@dataclass(frozen=True)
class VoiceSampleOutcome:
    index: int
    accepted: bool
    reasons: tuple[Issue, ...]
    report: ClipReport | None
    liveness: LivenessResult | None = None


@dataclass(frozen=True)
class EnrollVoiceOutcome:
    subject_id: str
    samples: tuple[VoiceSampleOutcome, ...]
    template: Template | None
    total_net_speech_s: float
    refusal: tuple[Issue, ...] = ()
    duplicates: tuple[Duplicate, ...] = ()


@dataclass(frozen=True)
class IdentifyVoiceOutcome:
    result: IdentifyResult
    model: str
    clip: ClipReport
    retry: tuple[Issue, ...]
    liveness: LivenessResult | None = None


@dataclass(frozen=True)
class VerifyVoiceOutcome:
    subject_id: str
    match: MatchResult
    model: str
    clip: ClipReport
    retry: tuple[Issue, ...]
    liveness: LivenessResult | None = None


def _report(
    decoded: DecodedAudio, sample: VoiceSample | None, issues: tuple[Issue, ...]
) -> ClipReport:
    return ClipReport(
        quality=sample.quality if sample else None,
        duration_s=decoded.duration_s,
        input_sample_rate_hz=decoded.sample_rate_hz,
        input_channels=decoded.input_channels,
        issues=issues,
    )


class VoiceVerification:
    def __init__(
        self,
        pipeline: VoicePipeline,
        pack: PackManifest,
        store: TemplateStore,
        pool: InferencePool,
        gallery: Gallery,
        *,
        liveness: LivenessGate | None = None,
        limits: AudioLimits,
        policy: VoicePolicy,
        default_operating_point: str = "",
        max_subject_id_length: int = 128,
    ) -> None:
        if pack.calibration is None:
            raise ValueError(f"pack {pack.id} has no calibration")
        self.pipeline = pipeline
        self.pack = pack
        self.calibration: Calibration = pack.calibration
        self.store = store
        self.pool = pool
        self.gallery = gallery
        self.liveness = liveness or LivenessGate(face=None, voice=None)
        self.limits = limits
        self.policy = policy
        self.default_operating_point = pack.operating_point(default_operating_point).name
        self.max_subject_id_length = max_subject_id_length

    @property
    def model(self) -> str:
        return self.pack.template_model

    def operating_point(self, policy: RequestPolicy) -> OperatingPoint:
        try:
            return self.pack.operating_point(policy.operating_point or self.default_operating_point)
        except BioverifyError as exc:
            raise InvalidInput(exc.message) from exc

    # -- clips ------------------------------------------------------------------------------
    def analyse(self, clip: AudioInput) -> tuple[DecodedAudio, VoiceSample]:
        if not clip.data:
            raise InvalidAudio("the audio is empty: send a WAV, FLAC, OGG or MP3 file or raw PCM")
        decoded = decode_audio(
            clip.data,
            encoding=clip.encoding,
            sample_rate_hz=clip.sample_rate_hz,
            channels=clip.channels,
            channel=clip.channel,
            limits=self.limits,
        )
        return decoded, self.pipeline.analyse(decoded)

    def _analyse_labelled(self, clip: AudioInput, label: str) -> tuple[DecodedAudio, VoiceSample]:
        try:
            return self.pool.run(self.analyse, clip)
        except BioverifyError as exc:
            exc.message = f"{label}: {exc.message}"
            raise

    def _speech_issues(self, sample: VoiceSample, minimum: float) -> tuple[Issue, ...]:
        issues = [Issue(i.code, i.message) for i in sample.quality.issues]
        if sample.net_speech_s < minimum and not any(i.code == "NOT_ENOUGH_SPEECH" for i in issues):
            issues.append(
                Issue(
                    "NOT_ENOUGH_SPEECH",
                    f"only {sample.net_speech_s:.1f} s of speech; at least {minimum:g} s needed",
                )
            )
        return tuple(issues)

    def compare(
        self, clip_a: AudioInput, clip_b: AudioInput, policy: RequestPolicy
    ) -> CompareVoicesOutcome:
        point = self.operating_point(policy)
        future_a = self.pool.submit(self.analyse, clip_a)
        future_b = self.pool.submit(self.analyse, clip_b)
        results = []
        for label, future in (("clip_a", future_a), ("clip_b", future_b)):
            try:
                results.append(future.result())
            except BioverifyError as exc:
                exc.message = f"{label}: {exc.message}"
                raise
        (dec_a, sample_a), (dec_b, sample_b) = results
        issues_a = self._speech_issues(sample_a, self.policy.min_verify_speech_s)
        issues_b = self._speech_issues(sample_b, self.policy.min_verify_speech_s)
        similarity = cosine_similarity(sample_a.embedding, sample_b.embedding)
        live_a = self._liveness(policy, DEFAULT_TENANT, sample_a, compare=True)
        live_b = self._liveness(policy, DEFAULT_TENANT, sample_b, compare=True)
        return CompareVoicesOutcome(
            match=decide_match(similarity, self.calibration, point),
            model=self.model,
            clip_a=_report(dec_a, sample_a, issues_a),
            clip_b=_report(dec_b, sample_b, issues_b),
            retry=issues_a + issues_b,
            liveness_a=live_a,
            liveness_b=live_b,
        )

    def enroll(
        self,
        *,
        tenant: str,
        subject_id: str,
        clips: Sequence[AudioInput],
        metadata: Mapping[str, str],
        replace: bool,
        policy: RequestPolicy,
        dry_run: bool = False,
        refuse_duplicates: bool = False,
    ) -> EnrollVoiceOutcome:
        tenant = validate_tenant(tenant)
        subject_id = validate_subject_id(subject_id, self.max_subject_id_length)
        meta = validate_metadata(metadata)
        if not clips:
            raise InvalidInput("no clips to enroll: send at least one")
        if len(clips) > self.policy.max_clips_per_enrollment:
            raise TooLarge(
                f"at most {self.policy.max_clips_per_enrollment} clips per enrollment, "
                f"got {len(clips)}"
            )
        futures = [self.pool.submit(self.analyse, clip) for clip in clips]
        outcomes: list[VoiceSampleOutcome] = []
        accepted: list[VoiceSample] = []
        accepted_ids: list[str] = []
        for index, future in enumerate(futures):
            try:
                decoded, sample = future.result()
            except (InvalidInput, TooLarge) as exc:
                outcomes.append(
                    VoiceSampleOutcome(index, False, (Issue(exc.reason, exc.message),), None)
                )
                continue
            issues = self._speech_issues(sample, self.policy.min_enroll_clip_speech_s)
            live = None if issues else self._liveness(policy, tenant, sample)
            if live is not None and live.blocks:
                issues = spoof_issues(live)
            outcomes.append(
                VoiceSampleOutcome(
                    index, not issues, issues, _report(decoded, sample, issues), live
                )
            )
            if not issues:
                accepted.append(sample)
                accepted_ids.append(sample_id(clips[index].data))
        total = float(sum(s.net_speech_s for s in accepted))
        if not accepted:
            return EnrollVoiceOutcome(subject_id, tuple(outcomes), None, total)
        existing = 0.0
        if not replace:
            try:
                current = self.store.get_template(tenant, subject_id, VOICE)
                existing = float(current.extra.get("net_speech_s", 0.0))
            except BioverifyError:
                existing = 0.0
        if total + existing < self.policy.min_enroll_total_speech_s:
            refusal = Issue(
                "NOT_ENOUGH_SPEECH",
                f"the accepted clips hold {total + existing:.1f} s of speech; an enrollment "
                f"needs at least {self.policy.min_enroll_total_speech_s:g} s",
            )
            return EnrollVoiceOutcome(subject_id, tuple(outcomes), None, total, (refusal,))
        duplicates = find_duplicates(
            self.gallery,
            tenant,
            subject_id,
            [s.embedding for s in accepted],
            calibration=self.calibration,
            point=self.operating_point(policy),
            refuse=refuse_duplicates and not dry_run,
        )
        if dry_run:
            return EnrollVoiceOutcome(subject_id, tuple(outcomes), None, total, (), duplicates)
        template = self.store.save_template(
            tenant=tenant,
            subject_id=subject_id,
            modality=VOICE,
            model=self.model,
            new_samples=np.stack([s.embedding for s in accepted]),
            metadata=meta,
            replace=replace,
            extra={"net_speech_s": total},
            sample_ids=accepted_ids,
        )
        self.gallery.catch_up(self.store)  # this replica sees its own write at once
        return EnrollVoiceOutcome(subject_id, tuple(outcomes), template, total, (), duplicates)

    def identify(
        self,
        *,
        tenant: str,
        clip: AudioInput,
        top_k: int,
        min_confidence: float,
        policy: RequestPolicy,
    ) -> IdentifyVoiceOutcome:
        tenant = validate_tenant(tenant)
        point = self.operating_point(policy)
        decoded, sample = self._analyse_labelled(clip, "clip")
        issues = self._speech_issues(sample, self.policy.min_verify_speech_s)
        live = self._liveness(policy, tenant, sample)
        result = identify(
            self.gallery,
            tenant,
            sample.embedding,
            top_k=top_k,
            min_confidence=min_confidence,
            calibration=self.calibration,
            point=point,
        )
        return IdentifyVoiceOutcome(
            result, self.model, _report(decoded, sample, issues), issues, live
        )

    def _template(self, tenant: str, subject_id: str) -> Template:
        template = self.store.get_template(tenant, subject_id, VOICE)
        if template.model != self.model:
            raise ModelMismatch(
                f"subject {subject_id!r} was enrolled with voice model {template.model}, but "
                f"this service runs {self.model}; re-enroll the subject with the current model"
            )
        return template

    def verify(
        self, *, tenant: str, subject_id: str, clip: AudioInput, policy: RequestPolicy
    ) -> VerifyVoiceOutcome:
        tenant = validate_tenant(tenant)
        subject_id = validate_subject_id(subject_id, self.max_subject_id_length)
        point = self.operating_point(policy)
        template = self._template(tenant, subject_id)
        decoded, sample = self._analyse_labelled(clip, "clip")
        issues = self._speech_issues(sample, self.policy.min_verify_speech_s)
        live = self._liveness(policy, tenant, sample)
        similarity = cosine_similarity(template.vector, sample.embedding)
        return VerifyVoiceOutcome(
            subject_id=subject_id,
            match=decide_match(similarity, self.calibration, point),
            model=self.model,
            clip=_report(decoded, sample, issues),
            retry=issues,
            liveness=live,
        )

    def _liveness(
        self, policy: RequestPolicy, tenant: str, sample: VoiceSample, compare: bool = False
    ) -> LivenessResult | None:
        if compare and not policy.require_liveness:
            return None
        return self.pool.run(
            self.liveness.voice_result, policy, tenant, sample.wave, sample.segments
        )

    def check_clip(self, clip: AudioInput) -> LivenessAssessment:
        """Synthetic / converted / replayed speech check on one clip (CheckLiveness)."""
        if self.liveness.voice is None:
            raise NotImplementedYet("no voice anti-spoofing pack is installed")
        _, sample = self._analyse_labelled(clip, "clip")
        return self.pool.run(self.liveness.voice.assess, sample.wave, sample.segments)

    # -- live calls -------------------------------------------------------------------------
    def open_stream(self, config: StreamConfig) -> VoiceStreamSession:
        tenant = validate_tenant(config.tenant)
        subject_id = validate_subject_id(config.subject_id, self.max_subject_id_length)
        if config.encoding not in RAW_ENCODINGS:
            raise StreamProtocolError(
                "a live stream carries raw audio: set encoding to PCM_S16LE, MULAW or ALAW"
            )
        if config.sample_rate_hz not in STREAM_SAMPLE_RATES:
            raise InvalidAudio(
                f"stream sample rate must be one of {', '.join(map(str, STREAM_SAMPLE_RATES))} Hz"
            )
        channels = config.channels or 1
        if not 1 <= channels <= 8:
            raise InvalidAudio("channels must be between 1 and 8")
        if config.channel is not None and not 0 <= config.channel < channels:
            raise InvalidAudio(
                f"channel {config.channel} does not exist in {channels}-channel audio"
            )
        vad = self.pipeline.vad
        if not isinstance(vad, SileroVad):
            raise InvalidInput("live streams need the Silero VAD")
        point = self.operating_point(config.policy)
        template = self._template(tenant, subject_id)
        interim = config.interim_every_speech_s or self.policy.interim_every_speech_s
        return VoiceStreamSession(
            self, vad, template, point, config, channels, max(1.0, min(interim, 30.0))
        )


@dataclass(frozen=True)
class StreamConfig:
    subject_id: str
    tenant: str
    encoding: AudioEncoding
    sample_rate_hz: int
    channels: int
    channel: int | None
    policy: RequestPolicy
    interim_every_speech_s: float = 0.0


@dataclass(frozen=True)
class StreamUpdate:
    final: bool
    call_seconds: float
    net_speech_seconds: float
    match: MatchResult | None
    issues: tuple[Issue, ...] = ()


@dataclass
class _Evidence:
    weighted_sum: npt.NDArray[np.float32] | None = None
    seconds: float = 0.0
    chunks: int = 0

    def add(self, embedding: npt.NDArray[np.float32], seconds: float) -> None:
        vec = np.asarray(embedding, dtype=np.float32) * np.float32(seconds)
        self.weighted_sum = vec if self.weighted_sum is None else self.weighted_sum + vec
        self.seconds += seconds
        self.chunks += 1

    def embedding(self) -> npt.NDArray[np.float32] | None:
        return None if self.weighted_sum is None else l2_normalize(self.weighted_sum)


@dataclass
class VoiceStreamSession:
    """State of one live call. Memory is bounded: only speech not yet embedded (at most one
    interim interval) and the running evidence are kept; audio stops at ``max_call_seconds``.

    Evidence accumulates as the duration-weighted mean of the embeddings of successive speech
    chunks, so each chunk is embedded once and the cost stays linear in the call length.
    """

    owner: VoiceVerification
    vad: SileroVad
    template: Template
    point: OperatingPoint
    config: StreamConfig
    channels: int
    interim_s: float
    _carry: bytes = b""
    _samples_in: int = 0
    _evidence: _Evidence = field(default_factory=_Evidence)
    _pending: list[npt.NDArray[np.float32]] = field(default_factory=list)
    _pending_samples: int = 0
    _unclassified: npt.NDArray[np.float32] = field(
        default_factory=lambda: np.zeros(0, dtype=np.float32)
    )
    _speaking: bool = False
    _finished: bool = False

    def __post_init__(self) -> None:
        self._resampler = StreamingResampler(self.config.sample_rate_hz, self.vad.sample_rate)
        self._vad_stream = self.vad.stream()
        self._rate = self.vad.sample_rate
        self._bytes_per_frame = (2 if self.config.encoding == AudioEncoding.PCM_S16LE else 1) * (
            self.channels
        )

    @property
    def call_seconds(self) -> float:
        return self._samples_in / self.config.sample_rate_hz

    @property
    def net_speech_seconds(self) -> float:
        return self._evidence.seconds + self._pending_samples / self._rate

    def feed(self, chunk: bytes) -> list[StreamUpdate]:
        """Take one chunk of raw audio; returns interim updates it completed (maybe none)."""
        if self._finished:
            raise StreamProtocolError("the stream already ended")
        if len(chunk) > self.owner.policy.max_stream_chunk_bytes:
            raise TooLarge(
                f"audio chunks may be at most {self.owner.policy.max_stream_chunk_bytes} bytes; "
                "send shorter chunks (e.g. 20 ms)"
            )
        data = self._carry + chunk
        usable = len(data) - len(data) % self._bytes_per_frame
        self._carry = data[usable:]
        wave = self._decode(data[:usable])
        remaining = self.owner.policy.max_call_seconds * self.config.sample_rate_hz
        remaining -= self._samples_in
        truncated = wave.size > remaining
        if truncated:
            wave = wave[: max(int(remaining), 0)]
        self._samples_in += wave.size
        updates = self._ingest(self._resampler.process(wave))
        if truncated:
            raise TooLarge(
                f"the call exceeded the maximum length of {self.owner.policy.max_call_seconds:g} s"
            )
        return updates

    def finish(self) -> StreamUpdate:
        """End of stream: embed what is left and give the final result."""
        if self._finished:
            raise StreamProtocolError("the stream already ended")
        self._ingest(self._resampler.flush(), final=True)
        self._finished = True
        if self._pending_samples / self._rate >= 0.5:
            self._embed_pending()
        return self._update(final=True)

    # -- internals --------------------------------------------------------------------------
    def _decode(self, data: bytes) -> npt.NDArray[np.float32]:
        if not data:
            return np.zeros(0, dtype=np.float32)
        enc = self.config.encoding
        if enc == AudioEncoding.PCM_S16LE:
            wave = np.frombuffer(data, dtype="<i2").astype(np.float32) / 32768.0
        elif enc == AudioEncoding.MULAW:
            wave = mulaw_decode(data)
        else:
            wave = alaw_decode(data)
        if self.channels > 1:
            frames = wave.reshape(-1, self.channels)
            wave = (
                frames[:, self.config.channel]
                if self.config.channel is not None
                else frames.mean(axis=1)
            )
        return np.ascontiguousarray(wave, dtype=np.float32)

    def _ingest(self, wave16: npt.NDArray[np.float32], final: bool = False) -> list[StreamUpdate]:
        self._unclassified = np.concatenate([self._unclassified, wave16])
        probabilities = self._vad_stream.accept(wave16)
        if final:
            probabilities = np.concatenate([probabilities, self._vad_stream.finish()])
        window = self.vad.window_samples
        updates: list[StreamUpdate] = []
        for p in np.asarray(probabilities, dtype=np.float32):
            samples = self._unclassified[:window]
            self._unclassified = self._unclassified[window:]
            # Hysteresis as in Silero's segmentation: start at 0.5, stay above 0.35.
            self._speaking = bool(p >= 0.5 or (self._speaking and p >= 0.35))
            if self._speaking and samples.size:
                self._pending.append(samples)
                self._pending_samples += samples.size
            if self._pending_samples >= self.interim_s * self._rate:
                self._embed_pending()
                updates.append(self._update(final=False))
        return updates

    def _embed_pending(self) -> None:
        speech = np.concatenate(self._pending)
        self._pending = []
        self._pending_samples = 0
        embedding = self.owner.pool.run(self.owner.pipeline.encoder.embed, speech)
        self._evidence.add(embedding, speech.size / self._rate)

    def _update(self, *, final: bool) -> StreamUpdate:
        embedding = self._evidence.embedding()
        minimum = self.owner.policy.min_verify_speech_s
        issues: tuple[Issue, ...] = ()
        match = None
        if embedding is not None:
            similarity = cosine_similarity(self.template.vector, embedding)
            match = decide_match(similarity, self.owner.calibration, self.point)
        if self._evidence.seconds < minimum:
            issues = (
                Issue(
                    "NOT_ENOUGH_SPEECH",
                    f"{self._evidence.seconds:.1f} s of speech so far; at least {minimum:g} s "
                    "needed for a decision",
                ),
            )
        return StreamUpdate(
            final=final,
            call_seconds=self.call_seconds,
            net_speech_seconds=self._evidence.seconds,
            match=match,
            issues=issues,
        )
