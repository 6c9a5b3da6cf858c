"""Voice use cases: compare, enroll, verify, and verification over a live call stream."""

from __future__ import annotations

import functools
import logging
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from bioverify.antispoof.aasist_onnx import NB_SAMP
from bioverify.antispoof.bandwidth import declared_narrowband
from bioverify.antispoof.voice_checker import MIN_SPEECH_S
from bioverify.errors import (
    AudioTooShort,
    BioverifyError,
    InvalidAudio,
    InvalidInput,
    NotImplementedYet,
    StreamProtocolError,
    TooLarge,
    Unavailable,
)
from bioverify.index.gallery import Gallery
from bioverify.liveness.ports import Check, LivenessAssessment
from bioverify.packs import NARROWBAND_CHANNEL, PackManifest
from bioverify.scoring import (
    Calibration,
    MatchResult,
    OperatingPoint,
    cosine_similarity,
    decide_match,
    l2_normalize,
    logit,
    sigmoid,
)
from bioverify.store.ports import (
    ExpectedTemplate,
    Template,
    TemplateStore,
    TemplateWrite,
    merge_samples,
)
from bioverify.usecases.common import (
    DEFAULT_TENANT,
    NOTHING_ACCEPTED,
    InferencePool,
    Issue,
    RequestPolicy,
    against_current_template,
    enrolment_subject_id,
    issue_of,
    legacy_sample_id,
    on_stored_form,
    prepare_all,
    prepare_each,
    refuse_unlike_subject,
    sample_id,
    save_enrollment,
    stored_template,
    template_for,
    validate_enrollment,
    validate_tenant,
)
from bioverify.usecases.gallery_search import Duplicate, IdentifyResult, identify
from bioverify.usecases.liveness import (
    NARROWBAND_NOT_ALLOWED,
    LivenessGate,
    LivenessResult,
    not_checked,
    spoof_issues,
)
from bioverify.voice.audio_decode import (
    AudioEncoding,
    AudioLimits,
    BlockResampler,
    DecodedAudio,
    alaw_decode,
    decode_audio,
    mulaw_decode,
)
from bioverify.voice.pipeline import Speech, VoicePipeline, VoiceSample
from bioverify.voice.ports import SpeechSegment
from bioverify.voice.quality import VoiceQualityReport, shortfall
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

    def decode(
        self,
        limits: AudioLimits,
        what: str = "the audio",
        *,
        working_rate_hz: int | None = None,
        measure_clipping: bool = True,
    ) -> DecodedAudio:
        """Decoded as declared (at ``working_rate_hz``, measuring clipping or not: see
        :func:`decode_audio`); InvalidAudio naming ``what`` when empty or undecodable."""
        if not self.data:
            raise InvalidAudio(f"{what} is empty: send a WAV, FLAC, OGG or MP3 file or raw PCM")
        return decode_audio(
            self.data,
            encoding=self.encoding,
            sample_rate_hz=self.sample_rate_hz,
            channels=self.channels,
            channel=self.channel,
            limits=limits,
            working_rate_hz=working_rate_hz,
            measure_clipping=measure_clipping,
        )


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


NARROWBAND_SPEECH = "narrowband_speech_s"  # template extra: seconds enrolled from phone audio


def _narrow(decoded: DecodedAudio) -> bool:
    """Telephone audio: sent at 8 kHz or less, or as G.711."""
    return declared_narrowband(decoded.sample_rate_hz, decoded.encoding)


def _template_narrow(template: Template) -> bool:
    """The template holds speech enrolled over a phone line (see :meth:`enroll`)."""
    return float(template.extra.get(NARROWBAND_SPEECH, 0.0)) > 0.0


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
        sample_id_key: bytes,
        identify_target_fpir: float = 0.01,
    ) -> None:
        """``sample_id_key``: the deployment's secret that sample ids are keyed with;
        ``identify_target_fpir``: see :func:`gallery_search.search_point`."""
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
        self.sample_id_key = sample_id_key
        self.identify_target_fpir = identify_target_fpir

    @property
    def model(self) -> str:
        return self.pack.template_model

    def operating_point(self, policy: RequestPolicy, channel: str = "") -> OperatingPoint:
        try:
            return self.pack.operating_point(
                policy.operating_point or self.default_operating_point, channel
            )
        except BioverifyError as exc:
            raise InvalidInput(exc.message) from exc

    def channel(self, *narrowband: bool) -> str:
        """``"narrowband"`` when both sides of a comparison are telephone audio and the pack is
        calibrated for that channel, else ``""`` (the default calibration).

        Two phone-line clips share the channel, which raises impostor scores: on the DEV
        utterances the wideband fmr_1e-3 threshold let 3.5 % of such impostors through. A
        phone clip against a wideband template shares no channel; there the wideband
        thresholds keep their false-match rate (0.04 % at fmr_1e-3) and the stricter
        telephone ones would reject most genuine callers."""
        narrow = bool(narrowband) and all(narrowband)
        return NARROWBAND_CHANNEL if narrow and NARROWBAND_CHANNEL in self.pack.channels else ""

    def scoring(self, policy: RequestPolicy, channel: str) -> tuple[Calibration, OperatingPoint]:
        """Calibration and operating point for ``channel`` (see :meth:`channel`)."""
        calibration = self.pack.calibration_for(channel) or self.calibration
        return calibration, self.operating_point(policy, channel)

    # -- clips ------------------------------------------------------------------------------
    def decode(self, clip: AudioInput) -> DecodedAudio:
        """The clip at the pipeline's working rate: never held at its own rate, so its memory
        is bounded by its duration whatever rate and channel count it was sent with."""
        return clip.decode(self.limits, working_rate_hz=self.pipeline.working_rate_hz)

    def analyse(self, clip: AudioInput) -> tuple[DecodedAudio, VoiceSample]:
        decoded = self.decode(clip)
        return decoded, self.pipeline.analyse(decoded)

    def _speech_issues(self, sample: VoiceSample, minimum: float) -> tuple[Issue, ...]:
        issues = [Issue(i.code, i.message) for i in sample.quality.issues]
        if sample.net_speech_s < minimum and not any(i.code == "NOT_ENOUGH_SPEECH" for i in issues):
            found, needed = shortfall(sample.net_speech_s, minimum)
            issues.append(
                Issue("NOT_ENOUGH_SPEECH", f"only {found} s of speech; at least {needed} s needed")
            )
        return tuple(issues)

    def compare(
        self, clip_a: AudioInput, clip_b: AudioInput, policy: RequestPolicy
    ) -> CompareVoicesOutcome:
        point = self.operating_point(policy)
        (dec_a, sample_a), (dec_b, sample_b) = prepare_all(
            self.pool, self.analyse, [clip_a, clip_b], ("clip_a", "clip_b")
        )
        issues_a = self._speech_issues(sample_a, self.policy.min_verify_speech_s)
        issues_b = self._speech_issues(sample_b, self.policy.min_verify_speech_s)
        similarity = cosine_similarity(sample_a.embedding, sample_b.embedding)
        wait_a = self._start_liveness(policy, DEFAULT_TENANT, dec_a, sample_a, compare=True)
        wait_b = self._start_liveness(policy, DEFAULT_TENANT, dec_b, sample_b, compare=True)
        live_a, live_b = wait_a(), wait_b()
        calibration, point = self.scoring(policy, self.channel(_narrow(dec_a), _narrow(dec_b)))
        return CompareVoicesOutcome(
            match=decide_match(similarity, calibration, point),
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
        """Clips that pass speech, liveness and SUBJECT_MISMATCH checks extend (or, with
        ``replace``, replace) the subject's voice template once they add enough speech new to
        it. The checks read the stored template and the write expects it unchanged; when
        another request changed it in between, they run again on the new one
        (``against_current_template``)."""
        sent_id = subject_id
        tenant, subject_id, meta = validate_enrollment(
            tenant,
            subject_id,
            metadata,
            clips,
            noun="clips",
            max_samples=self.policy.max_clips_per_enrollment,
            max_subject_id_length=self.max_subject_id_length,
        )
        subject_id = enrolment_subject_id(
            self.store, tenant, sent_id, subject_id, self.max_subject_id_length
        )
        outcomes: list[VoiceSampleOutcome] = []
        accepted: list[VoiceSample] = []
        accepted_ids: list[str] = []
        legacy_ids: list[str] = []
        speech: list[dict[str, float]] = []  # per accepted clip
        checking = []
        for index, analysed in enumerate(prepare_each(self.pool, self.analyse, clips)):
            if isinstance(analysed, InvalidInput | TooLarge):
                outcomes.append(VoiceSampleOutcome(index, False, (issue_of(analysed),), None))
                continue
            decoded, sample = analysed
            issues = self._speech_issues(sample, self.policy.min_enroll_clip_speech_s)
            wait = not_checked if issues else self._start_liveness(policy, tenant, decoded, sample)
            checking.append((index, decoded, sample, issues, wait))
        for index, decoded, sample, issues, wait in checking:  # liveness of all clips at once
            live = wait()
            if live is not None and live.blocks:
                issues = spoof_issues(live)
            outcomes.append(
                VoiceSampleOutcome(
                    index, not issues, issues, _report(decoded, sample, issues), live
                )
            )
            if not issues:
                accepted.append(sample)
                accepted_ids.append(sample_id(self.sample_id_key, clips[index].data))
                legacy_ids.append(legacy_sample_id(clips[index].data))
                narrow = sample.net_speech_s if _narrow(decoded) else 0.0
                speech.append({"net_speech_s": sample.net_speech_s, NARROWBAND_SPEECH: narrow})
        outcomes.sort(key=lambda o: o.index)
        if not accepted:
            return EnrollVoiceOutcome(subject_id, tuple(outcomes), None, 0.0, (NOTHING_ACCEPTED,))
        embeddings = np.stack([s.embedding for s in accepted])

        def write_against(current: Template | None) -> EnrollVoiceOutcome:
            checked, kept = refuse_unlike_subject(outcomes, embeddings, current, self.pack)
            if not kept:
                nothing = (NOTHING_ACCEPTED,)
                return EnrollVoiceOutcome(subject_id, tuple(checked), None, 0.0, nothing)
            clips_kept = [accepted[row] for row in kept]
            ids_kept = [accepted_ids[row] for row in kept]
            legacy_kept = [legacy_ids[row] for row in kept]
            speech_kept = [speech[row] for row in kept]
            total = float(sum(s.net_speech_s for s in clips_kept))
            narrow_speech = sum(s[NARROWBAND_SPEECH] for s in speech_kept)
            existing, fresh = 0.0, total
            if not replace and current is not None:
                existing = float(current.extra.get("net_speech_s", 0.0))
                # clips the template holds already (the store's own rule) add no speech
                _, _, added = merge_samples(
                    None, current.sample_ids, embeddings[kept], ids_kept, legacy_kept
                )
                fresh = float(sum(clips_kept[row].net_speech_s for row in added))
            if fresh + existing < self.policy.min_enroll_total_speech_s:
                found, needed = shortfall(fresh + existing, self.policy.min_enroll_total_speech_s)
                refusal = Issue(
                    "NOT_ENOUGH_SPEECH",
                    f"the accepted clips hold {found} s of speech new to the template; an "
                    f"enrollment needs at least {needed} s",
                )
                return EnrollVoiceOutcome(subject_id, tuple(checked), None, total, (refusal,))
            # All-phone enrollments are searched like phone probes (see :meth:`identify`).
            calibration, point = self.scoring(policy, self.channel(narrow_speech >= total > 0.0))
            write = TemplateWrite(
                tenant=tenant,
                subject_id=subject_id,
                modality=VOICE,
                model=self.model,
                new_samples=embeddings[kept],
                metadata=meta,
                replace=replace,
                sample_ids=ids_kept,
                legacy_sample_ids=legacy_kept,
                sample_extra=speech_kept,  # a clip the template holds already adds no speech
                expected=ExpectedTemplate.of(current),
            )
            template, duplicates = save_enrollment(
                self.store,
                self.gallery,
                write,
                calibration=calibration,
                point=point,
                refuse_duplicates=refuse_duplicates,
                dry_run=dry_run,
            )
            return EnrollVoiceOutcome(subject_id, tuple(checked), template, total, (), duplicates)

        def read() -> Template | None:
            return stored_template(self.store, tenant, subject_id, VOICE)

        return against_current_template(read, write_against, stored=read())

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
        decoded, sample, live = self._analyse_with_liveness(policy, tenant, clip)
        issues = self._speech_issues(sample, self.policy.min_verify_speech_s)
        # Candidates' channels are not known in the index: a phone probe is searched with the
        # stricter telephone thresholds (an open-set search must not let impostors in).
        channel = self.channel(_narrow(decoded))
        calibration, point = self.scoring(policy, channel)
        result = identify(
            self.gallery,
            tenant,
            sample.embedding,
            top_k=top_k,
            min_confidence=min_confidence,
            calibration=calibration,
            point=point,
            scale_among=() if policy.operating_point else self.pack.operating_points_for(channel),
            target_fpir=self.identify_target_fpir,
        )
        return IdentifyVoiceOutcome(
            result, self.model, _report(decoded, sample, issues), issues, live
        )

    def _template(self, tenant: str, subject_id: str) -> Template:
        return template_for(self.store, tenant, subject_id, VOICE, self.model)

    def _stored_template(self, tenant: str, subject_id: str) -> tuple[str, Template]:
        """The subject's id as stored (NFC, or a legacy form: ``on_stored_form``) and its voice
        template."""
        ((stored, template),) = on_stored_form(
            subject_id, self.max_subject_id_length, lambda form: self._template(tenant, form)
        )
        return stored, template

    def verify(
        self, *, tenant: str, subject_id: str, clip: AudioInput, policy: RequestPolicy
    ) -> VerifyVoiceOutcome:
        tenant = validate_tenant(tenant)
        point = self.operating_point(policy)
        subject_id, template = self._stored_template(tenant, subject_id)
        decoded, sample, live = self._analyse_with_liveness(policy, tenant, clip)
        issues = self._speech_issues(sample, self.policy.min_verify_speech_s)
        similarity = cosine_similarity(template.vector, sample.embedding)
        calibration, point = self.scoring(
            policy, self.channel(_narrow(decoded), _template_narrow(template))
        )
        return VerifyVoiceOutcome(
            subject_id=subject_id,
            match=decide_match(similarity, calibration, point),
            model=self.model,
            clip=_report(decoded, sample, issues),
            retry=issues,
            liveness=live,
        )

    def _analyse_with_liveness(
        self, policy: RequestPolicy, tenant: str, clip: AudioInput
    ) -> tuple[DecodedAudio, VoiceSample, LivenessResult | None]:
        """Decode and find the speech, then run the spoofing check and the embedding side by
        side on the pool: both start from the speech, so liveness adds little latency."""
        decoded, speech = prepare_all(self.pool, self._find_speech, [clip], ["clip"])[0]
        wait = self._start_liveness(policy, tenant, decoded, speech)
        sample = self.pool.run(self.pipeline.sample, speech)
        return decoded, sample, wait()

    def _find_speech(self, clip: AudioInput) -> tuple[DecodedAudio, Speech]:
        decoded = self.decode(clip)
        return decoded, self.pipeline.find_speech(decoded)

    def _start_liveness(
        self,
        policy: RequestPolicy,
        tenant: str,
        decoded: DecodedAudio,
        sample: VoiceSample | Speech,
        compare: bool = False,
    ) -> Callable[[], LivenessResult | None]:
        """Start the spoofing check on the pool and return what waits for its result (see
        FaceVerification._start_liveness)."""
        if compare and not policy.require_liveness:
            return not_checked
        return self.pool.submit(
            lambda: self.liveness.voice_result(
                policy, tenant, sample.wave, sample.segments, declared_narrowband=_narrow(decoded)
            )
        ).result

    def check_clip(self, clip: AudioInput, tenant: str = "") -> LivenessAssessment:
        """Synthetic / converted / replayed speech check on one clip (CheckLiveness), under
        ``tenant``'s narrowband policy."""
        if self.liveness.voice is None:
            raise NotImplementedYet("no voice anti-spoofing pack is installed")
        tenant = validate_tenant(tenant)

        def check(clip: AudioInput) -> LivenessAssessment:
            decoded, speech = self._find_speech(clip)  # no speaker embedding needed here
            return self.liveness.assess_voice(
                tenant, speech.wave, speech.segments, declared_narrowband=_narrow(decoded)
            )

        return prepare_all(self.pool, check, [clip], ["clip"])[0]

    # -- live calls -------------------------------------------------------------------------
    def open_stream(self, config: StreamConfig) -> VoiceStreamSession:
        tenant = validate_tenant(config.tenant)
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
        self.operating_point(config.policy)  # an unknown name fails before any audio
        subject_id, template = self._stored_template(tenant, config.subject_id)
        narrowband = declared_narrowband(config.sample_rate_hz, config.encoding)
        scoring = self.scoring(config.policy, self.channel(narrowband, _template_narrow(template)))
        interim = config.interim_every_speech_s or self.policy.interim_every_speech_s
        # A stream is always assessed when a checker is installed (an agent must be warned
        # mid-call); the policy only decides whether the assessment blocks the decision.
        required, observe = self.liveness.requirement(config.policy, tenant, "voice")
        checker = self.liveness.voice
        if required and checker is None:
            raise NotImplementedYet(
                "liveness was required but this service has no voice anti-spoofing pack installed"
            )
        if required and not observe and narrowband and not self.liveness.allows_narrowband(tenant):
            raise InvalidAudio(
                "this tenant requires wideband audio for voice liveness: telephone-band streams "
                "(8 kHz or G.711) cannot be checked for synthetic speech reliably enough",
                reason=NARROWBAND_NOT_ALLOWED,
            )
        monitor = (
            StreamSpoofMonitor(
                self.liveness,
                tenant,
                rate=vad.sample_rate,
                input_rate=config.sample_rate_hz,
                narrowband=narrowband,
            )
            if checker is not None
            else None
        )
        return VoiceStreamSession(
            self,
            vad,
            template,
            functools.partial(self._template, tenant, subject_id),
            scoring,
            config,
            channels,
            max(1.0, min(interim, 30.0)),
            spoof=monitor,
            spoof_observe_only=observe or not required,
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
    liveness: LivenessResult | None = None
    """The running synthetic-speech assessment (None until enough speech was assessed or
    without a voice anti-spoofing pack); ``observe_only`` when it does not block."""


STREAM_SPOOF_CODE = "VOICE_SYNTHETIC_SPEECH"
STREAM_SPOOF_RECENT = 4
"""Assessed windows (about 4 s of speech each) in the running score: the last ~16 s."""
STREAM_SPOOF_MARGIN_CLIP = 3.0
"""Each window's fused log-odds margin over the threshold is clipped to this (±)."""
STREAM_SPOOF_MAX_PAUSE_S = 0.5
"""Non-speech kept per pause in an assessed window (enough for the noise-floor and reverb
signals; longer pauses would only cost AASIST time)."""


@dataclass(frozen=True)
class _SpoofSpan:
    """Audio gathered for one assessment (16 kHz, pauses shortened, VAD segments)."""

    wave: npt.NDArray[np.float32]
    segments: tuple[SpeechSegment, ...]
    speech_s: float
    start_call_s: float
    end_call_s: float
    aasist_start: int = 0
    """Start of the one AASIST window (the one holding the most speech) in ``wave``."""


@dataclass(frozen=True)
class _SpoofWindow:
    """One assessed stretch of the call."""

    assessment: LivenessAssessment
    speech_s: float
    margin: float
    start_call_s: float
    end_call_s: float


class StreamSpoofMonitor:
    """The running synthetic-speech assessment of one live call.

    **What is assessed.** Call audio (16 kHz) is gathered with the stream's VAD decisions;
    each time one AASIST window's worth of *new* speech (``model.window`` samples, 4.04 s)
    has been heard, that audio (speech plus its pauses, each pause cut to
    ``STREAM_SPOOF_MAX_PAUSE_S``, the whole capped at two AASIST windows) is assessed once —
    AASIST on exactly one window, the one holding the most speech, and the explainable
    signals on the whole stretch — and dropped. At the end of the call the remainder is
    assessed if it holds at least ``MIN_SPEECH_S`` of speech. Every stretch of speech is
    thus assessed once: one AASIST window per ~4 s of speech, whatever the call length.
    Memory is bounded too: at most two AASIST windows of audio plus the last
    ``STREAM_SPOOF_RECENT`` assessments.

    **Running score.** A speech-weighted mean, over the last ``STREAM_SPOOF_RECENT``
    assessed windows (~16 s of speech), of each window's fused log-odds margin over the
    operating threshold, every margin clipped to ``±STREAM_SPOOF_MARGIN_CLIP``. Why this
    and not the alternatives:

    * a max-suspicion (minimum over windows) score flags a whole call on one bad window (a
      cough, a burst of line noise, a door slam) — per-window false alarms are several times
      more frequent than per-clip ones on short windows;
    * a whole-call mean is robust but dilutes a late attack: after an hour of the genuine
      caller, a minute of converted speech would never move it;
    * the clipped recent mean needs the *majority* of the recent speech to be suspicious:
      one window can move it by at most ``MARGIN_CLIP / RECENT`` (0.75 log-odds), while a
      switch to synthetic speech shows within two or three windows (8–12 s of speech).

    Log-odds (not probabilities) are averaged because the fusion is additive in log-odds:
    the reported per-check ``weight`` is the same speech-weighted mean of each check's
    contribution, so the checks still explain the running score.

    **Latching.** Once the running score has been below the threshold with at least two
    windows behind it (a sustained episode, not a single window), the call stays flagged
    (``live`` false, the episode's time named in the reasons) even if later speech looks
    genuine: a call that contained synthetic speech should not end with a clean verdict.
    Not thread-safe: one instance per call.
    """

    def __init__(
        self,
        gate: LivenessGate,
        tenant: str,
        *,
        rate: int,
        input_rate: int,
        narrowband: bool = False,
    ) -> None:
        if gate.voice is None:
            raise NotImplementedYet("no voice anti-spoofing pack is installed")
        self.gate = gate
        self.tenant = tenant
        self.checker = gate.voice
        self.narrowband = narrowband
        """Declared telephone call (8 kHz or G.711): the telephone-band fusion scores every
        window; otherwise each window's bandwidth is measured by the checker."""
        self.rate = rate
        model = self.checker.model
        # Without AASIST, spans are as long as its window would be (4.04 s at 16 kHz).
        window = int(model.window) if model is not None else round(NB_SAMP * rate / 16000)
        self.span = window
        self.max_buffer = 2 * window
        self.max_pause = round(STREAM_SPOOF_MAX_PAUSE_S * rate)
        self.input_rate = input_rate
        self._chunks: deque[tuple[npt.NDArray[np.float32], bool, int]] = deque()
        self._buffered = 0
        self._speech = 0
        self._pause = 0
        self._pos = 0  # 16 kHz samples of the call seen so far
        self._recent: deque[_SpoofWindow] = deque(maxlen=STREAM_SPOOF_RECENT)
        self._count = 0
        self._assessed_speech_s = 0.0
        self._episode: tuple[float, float] | None = None

    def add(self, samples: npt.NDArray[np.float32], speaking: bool) -> bool:
        """Add one VAD window of call audio; True when a span of new speech is ready."""
        start = self._pos
        self._pos += samples.size
        if speaking:
            self._pause = 0
            self._speech += samples.size
        elif self._pause + samples.size > self.max_pause:
            return False
        else:
            self._pause += samples.size
        self._chunks.append((samples, speaking, start))
        self._buffered += samples.size
        while self._buffered > self.max_buffer:
            dropped, was_speech, _ = self._chunks.popleft()
            self._buffered -= dropped.size
            if was_speech:
                self._speech -= dropped.size
        return self._speech >= self.span

    def take(self, *, final: bool = False) -> _SpoofSpan | None:
        """The gathered audio for an assessment, and a fresh buffer; None when there is not
        enough new speech (a full span, or at the end of the call ``MIN_SPEECH_S``)."""
        minimum = self.span if not final else round(MIN_SPEECH_S * self.rate)
        if self._speech < minimum or not self._chunks:
            return None
        segments: list[SpeechSegment] = []
        offset = 0
        run_start: int | None = None
        for samples, speaking, _ in self._chunks:
            if speaking and run_start is None:
                run_start = offset
            elif not speaking and run_start is not None:
                segments.append(SpeechSegment(run_start / self.rate, offset / self.rate))
                run_start = None
            offset += samples.size
        if run_start is not None:
            segments.append(SpeechSegment(run_start / self.rate, offset / self.rate))
        first = self._chunks[0]
        last = self._chunks[-1]
        wave = np.concatenate([c[0] for c in self._chunks])
        aasist_start = 0
        if wave.size > self.span:
            speech = np.concatenate([np.full(c[0].size, c[1]) for c in self._chunks])
            cumulative = np.concatenate([[0], np.cumsum(speech, dtype=np.int64)])
            inside = cumulative[self.span :] - cumulative[: -self.span]
            aasist_start = int(np.argmax(inside))
        span = _SpoofSpan(
            wave=wave,
            segments=tuple(segments),
            speech_s=self._speech / self.rate,
            start_call_s=first[2] / self.rate,
            end_call_s=(last[2] + last[0].size) / self.rate,
            aasist_start=aasist_start,
        )
        self._chunks.clear()
        self._buffered = self._speech = self._pause = 0
        return span

    def assess(self, span: _SpoofSpan) -> LivenessAssessment:
        """Assess one span: AASIST on exactly one window (the one holding the most speech;
        a shorter span is tiled by the model), the signals on the whole span."""
        model = self.checker.model
        log_odds = None
        if model is not None and span.wave.size > self.span:
            window = span.wave[span.aasist_start : span.aasist_start + self.span]
            log_odds = model.log_odds(window)
        return self.gate.assess_voice(
            self.tenant,
            span.wave,
            span.segments,
            declared_narrowband=self.narrowband,
            aasist_log_odds=log_odds,
        )

    def record(self, assessment: LivenessAssessment, span: _SpoofSpan) -> None:
        margin = logit(assessment.score) - logit(assessment.threshold)
        clip = STREAM_SPOOF_MARGIN_CLIP
        self._recent.append(
            _SpoofWindow(
                assessment,
                span.speech_s,
                float(np.clip(margin, -clip, clip)),
                span.start_call_s,
                span.end_call_s,
            )
        )
        self._count += 1
        self._assessed_speech_s += span.speech_s
        if len(self._recent) >= 2 and self._margin() < 0.0:
            start = min(w.start_call_s for w in self._recent if w.margin < 0.0)
            end = span.end_call_s
            if self._episode is not None:
                start = min(start, self._episode[0])
            self._episode = (start, end)

    def _margin(self) -> float:
        total = sum(w.speech_s for w in self._recent)
        return sum(w.speech_s * w.margin for w in self._recent) / total

    def report(self) -> LivenessAssessment | None:
        """The running assessment, or None before the first assessed window."""
        if not self._recent:
            return None
        recent = list(self._recent)
        total = sum(w.speech_s for w in recent)
        margin = self._margin()
        threshold = recent[-1].assessment.threshold
        live_now = margin >= 0.0
        flagged = sum(1 for w in recent if w.margin < 0.0)
        checks = self._checks(recent, total, rejected=not live_now)
        checks.append(
            Check(
                name="stream_windows",
                score=1.0 - flagged / len(recent),
                weight=0.0,
                passed=live_now and self._episode is None,
                detail=(
                    f"running score over the last {len(recent)} window(s), {total:.1f} s of "
                    f"speech ({flagged} below the threshold; each window's margin clipped to "
                    f"±{STREAM_SPOOF_MARGIN_CLIP:g} log-odds); {self._count} window(s), "
                    f"{self._assessed_speech_s:.1f} s of speech assessed in the call"
                ),
            )
        )
        if self.input_rate < 16000 or self.narrowband:
            model = (
                "the telephone-band model scores it"
                if self.checker.narrowband_fusion is not None
                else "no telephone-band model is installed, so it scores as less live"
            )
            checks.append(
                Check(
                    name="stream_bandwidth",
                    score=0.5,
                    weight=0.0,
                    passed=True,
                    detail=(
                        f"informational: the stream is sampled at {self.input_rate} Hz"
                        f"{' (G.711)' if self.narrowband and self.input_rate > 8000 else ''}; "
                        f"narrowband input: {model}"
                    ),
                )
            )
        reasons: list[tuple[str, str]] = []
        if not live_now:
            reasons.append(
                (
                    STREAM_SPOOF_CODE,
                    f"synthetic speech suspected in the last {total:.0f} s of speech "
                    f"({flagged} of {len(recent)} window(s) below the threshold)",
                )
            )
            worst = min(recent, key=lambda w: w.margin)
            reasons.extend(worst.assessment.reasons)
        elif self._episode is not None:
            start, end = self._episode
            reasons.append(
                (
                    STREAM_SPOOF_CODE,
                    f"synthetic speech was suspected earlier in the call, between {start:.0f} s "
                    f"and {end:.0f} s",
                )
            )
        return LivenessAssessment(
            live=live_now and self._episode is None,
            score=sigmoid(margin + logit(threshold)),
            threshold=threshold,
            checks=tuple(checks),
            reasons=tuple(reasons),
        )

    @staticmethod
    def _checks(recent: list[_SpoofWindow], total: float, *, rejected: bool) -> list[Check]:
        """Each check of the latest window, with weight and score averaged (by speech) over
        the recent windows: the weights stay the additive parts of the running log-odds. A
        check fails when the running assessment rejects and it pulled that way."""
        latest = recent[-1].assessment.checks
        checks: list[Check] = []
        for check in latest:
            found = [
                (w.speech_s, c) for w in recent for c in w.assessment.checks if c.name == check.name
            ]
            seconds = sum(s for s, _ in found) or total
            weight = sum(s * c.weight for s, c in found) / seconds
            score = sum(s * c.score for s, c in found) / seconds
            if check.weight == 0.0 and weight == 0.0:
                checks.append(check)
                continue
            checks.append(
                Check(
                    name=check.name,
                    score=score,
                    weight=weight,
                    passed=not (rejected and weight < 0.0),
                    detail=(
                        f"latest window: {check.detail}; mean contribution {weight:+.2f} "
                        f"over the last {len(found)} window(s)"
                    ),
                )
            )
        return checks


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
    With a voice anti-spoofing checker, ``spoof`` keeps the running synthetic-speech
    assessment (see :class:`StreamSpoofMonitor`); ``spoof_observe_only`` is False only when
    liveness is required and not in observe mode, i.e. when a spoof verdict blocks.
    """

    owner: VoiceVerification
    vad: SileroVad
    template: Template
    # Read again for every update: a subject deleted (or re-enrolled) mid-call must not keep
    # verifying against the template read when the call began (NotEnrolled ends the call).
    current_template: Callable[[], Template]
    scoring: tuple[Calibration, OperatingPoint]  # for the stream's channel
    config: StreamConfig
    channels: int
    interim_s: float
    spoof: StreamSpoofMonitor | None = None
    spoof_observe_only: bool = True
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
    _stale_template: bool = False  # a store outage was logged for this call

    def __post_init__(self) -> None:
        self._resampler = BlockResampler(self.config.sample_rate_hz, self.vad.sample_rate)
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
        updates = self._ingest(self._resampler.push(wave))
        if truncated:
            raise TooLarge(
                f"the call exceeded the maximum length of {self.owner.policy.max_call_seconds:g} s"
            )
        return updates

    def finish(self) -> StreamUpdate:
        """End of stream: embed what is left and give the final result."""
        if self._finished:
            raise StreamProtocolError("the stream already ended")
        self._ingest(self._resampler.finish(), final=True)
        self._finished = True
        if self._pending_samples / self._rate >= 0.5:
            self._embed_pending()
        self._assess_spoof(final=True)
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
            if self.spoof is not None and samples.size and self.spoof.add(samples, self._speaking):
                self._assess_spoof()
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

    def _assess_spoof(self, final: bool = False) -> None:
        """Assess the speech gathered since the last assessment (on the inference pool)."""
        if self.spoof is None:
            return
        span = self.spoof.take(final=final)
        if span is None:
            return
        try:
            assessment = self.owner.pool.run(self.spoof.assess, span)
        except AudioTooShort:  # the checker counts speech itself; nothing to add then
            return
        self.spoof.record(assessment, span)

    def _update(self, *, final: bool) -> StreamUpdate:
        try:
            self.template = self.current_template()
        except Unavailable:
            # A store outage (failover, busy) must not end an hour-long call: score against
            # the template read last; a deletion is still seen once the store answers.
            if not self._stale_template:
                logger.warning(
                    "live call: the template store is unavailable; scoring against the "
                    "subject's template as last read"
                )
            self._stale_template = True
        embedding = self._evidence.embedding()
        minimum = self.owner.policy.min_verify_speech_s
        issues: tuple[Issue, ...] = ()
        match = None
        if embedding is not None:
            similarity = cosine_similarity(self.template.vector, embedding)
            match = decide_match(similarity, *self.scoring)
        if self._evidence.seconds < minimum:
            found, needed = shortfall(self._evidence.seconds, minimum)
            issues = (
                Issue(
                    "NOT_ENOUGH_SPEECH",
                    f"{found} s of speech so far; at least {needed} s needed for a decision",
                ),
            )
        liveness = None
        report = self.spoof.report() if self.spoof is not None else None
        if report is not None:
            liveness = LivenessResult(report, self.spoof_observe_only)
            if liveness.blocks:
                issues = spoof_issues(liveness) + issues
        return StreamUpdate(
            final=final,
            call_seconds=self.call_seconds,
            net_speech_seconds=self._evidence.seconds,
            match=match,
            issues=issues,
            liveness=liveness,
        )
