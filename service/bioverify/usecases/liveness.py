"""Liveness in the use cases: which requests need it (per request, per tenant, service
default), running the checkers, and CheckLiveness / active challenges on their own."""

from __future__ import annotations

import logging
import math
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from bioverify.antispoof.bandwidth import assess_bandwidth
from bioverify.antispoof.voice_checker import VoiceSpoofChecker
from bioverify.errors import InvalidInput, NotImplementedYet, Unavailable
from bioverify.face.pipeline import FacePipeline, PreparedFace
from bioverify.liveness.av_sync import AV_SYNC_FAILED, AvSyncChecker
from bioverify.liveness.challenge import (
    EYE_BLINK,
    Challenge,
    ChallengeIssuer,
    Redemption,
    observe_blink,
    verify_challenge,
)
from bioverify.liveness.continuity import (
    CAPTURE_MATCHES_SUBJECT,
    IDENTITY_CHANGED,
    IDENTITY_CONTINUITY,
    IMAGES_MATCH_CAPTURE,
    identity_continuity,
    largest_jump,
)
from bioverify.liveness.face_checker import FaceLivenessChecker, ramp_score
from bioverify.liveness.ports import Check, FaceShapeModel, LivenessAssessment
from bioverify.liveness.shape68 import eye_aspect_ratio
from bioverify.scoring import cosine_similarity, shown_against
from bioverify.usecases.common import (
    InferencePool,
    Issue,
    RequestPolicy,
    prepare_all,
    validate_subject_id,
    validate_tenant,
)
from bioverify.voice.audio_decode import AudioLimits, DecodedAudio
from bioverify.voice.ports import SpeechSegment, Waveform

if TYPE_CHECKING:
    from bioverify.usecases.voice import AudioInput

logger = logging.getLogger(__name__)

NARROWBAND_NOT_ALLOWED = "NARROWBAND_NOT_ALLOWED"


@dataclass(frozen=True)
class TenantLivenessPolicy:
    require_face: bool = False
    require_voice: bool = False
    observe_only: bool = False
    # Telephone-band audio gets the weaker telephone-band spoofing model; a tenant that must
    # not let an attacker downgrade to it (by sending 8 kHz / G.711 or low-passed audio) sets
    # this False, and narrowband samples then fail voice liveness.
    allow_narrowband_voice: bool = True


@dataclass(frozen=True)
class LivenessResult:
    """An assessment and whether it blocks the decision (False in observe mode).
    ``redemption``: the challenge the assessment used up, if it answered one."""

    assessment: LivenessAssessment
    observe_only: bool
    redemption: Redemption | None = None

    @property
    def blocks(self) -> bool:
        return not self.assessment.live and not self.observe_only


def one_reason_per_code(reasons: Iterable[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
    """``(code, message)`` reasons with each code once, where it first came, its messages
    joined: a capture can fail IDENTITY_CHANGED twice over (a person change within the frames
    and the subject not being the live person), which is one reason to a client."""
    merged: dict[str, list[str]] = {}
    for code, message in reasons:
        messages = merged.setdefault(code, [])
        if message not in messages:
            messages.append(message)
    return tuple((code, "; ".join(messages)) for code, messages in merged.items())


def not_checked() -> LivenessResult | None:
    """What waits for the liveness of a sample that is not checked on its own: nothing."""
    return None


def spoof_issues(result: LivenessResult) -> tuple[Issue, ...]:
    """Why a sample was judged not live, as issues (SPOOF_SUSPECTED first)."""
    issues = [Issue("SPOOF_SUSPECTED", "the sample does not appear to come from a live person")]
    issues.extend(Issue(code, message) for code, message in result.assessment.reasons)
    return tuple(issues)


@dataclass(frozen=True)
class LiveCapture:
    """A burst of frames from one capture (CheckLiveness frames, the live_capture of
    VerifyFace, IdentifyFace and EnrollFace), with the challenge it answers (empty: none) and
    its audio track (None: none)."""

    frames: Sequence[bytes]
    challenge_id: str = ""
    nonce: str = ""
    fps: float = 0.0
    audio: AudioInput | None = None


def validate_challenge_answer(challenge_id: str, nonce: str) -> None:
    """A challenge is answered with both its id and its nonce: InvalidInput when only one is
    sent, before the challenge is looked up (so a client that dropped one learns it at once and
    the challenge stays usable). A nonce without an id must not be passed over silently: the
    capture would be judged passively and the client believe its challenge was checked."""
    if nonce and not challenge_id:
        raise InvalidInput(
            "nonce given without challenge_id: send both from StartLivenessChallenge, or neither"
        )
    if challenge_id and not nonce:
        raise InvalidInput(
            "challenge_id given without nonce: send both from StartLivenessChallenge, or neither"
        )


def refuse_challenge_without_frames(challenge_id: str, nonce: str, sample: str) -> None:
    """CheckLiveness of a single ``sample`` ("an image", "an audio clip"): an active challenge
    is performed in frames, so a challenge id or nonce sent with anything else is InvalidInput
    rather than ignored."""
    if challenge_id or nonce:
        raise InvalidInput(f"an active challenge is answered with frames, not with {sample}")


@dataclass(frozen=True)
class CaptureBinding:
    """What a live capture vouches for in a face decision.

    ``images``: the faces sent with the capture (the verified or identified image, the
    enrolment images) by name, as embeddings; each must be the frames' person.
    ``threshold``: the request's operating-point similarity. ``subject_id``: the subject the
    request is about (a challenge issued for a subject is redeemable only there; empty:
    none). ``template``: the enrolled template the decision names (None: none), which the
    frames' reference face must match at ``threshold``. ``images_at_threshold``: each image
    must also match the frames' reference face at ``threshold`` (EnrollFace, where the
    images become the template and no decision ties them to one at that threshold)."""

    images: tuple[tuple[str, npt.NDArray[np.float32]], ...]
    threshold: float
    subject_id: str = ""
    template: npt.NDArray[np.float32] | None = None
    images_at_threshold: bool = False


@dataclass
class LivenessGate:
    face: FaceLivenessChecker | None
    voice: VoiceSpoofChecker | None
    default: TenantLivenessPolicy = field(default_factory=TenantLivenessPolicy)
    tenants: Mapping[str, TenantLivenessPolicy] = field(default_factory=dict)

    def _policy(self, tenant: str) -> TenantLivenessPolicy:
        return self.tenants.get(tenant, self.default)

    def allows_narrowband(self, tenant: str) -> bool:
        return self._policy(tenant).allow_narrowband_voice

    def requirement(self, request: RequestPolicy, tenant: str, modality: str) -> tuple[bool, bool]:
        """(required, observe_only) for ``modality``. The tenant's policy (else the service
        default) is a floor: a request may ask for liveness, and for observe mode where the
        tenant does not require liveness, but cannot waive or soften what the tenant requires
        (an API client switching off the bank's liveness rule)."""
        policy = self._policy(tenant)
        mandated = policy.require_face if modality == "face" else policy.require_voice
        required = mandated or bool(request.require_liveness)
        observe = policy.observe_only or (request.observe_only and not mandated)
        return required, observe

    def face_result(
        self, request: RequestPolicy, tenant: str, prepared: PreparedFace
    ) -> LivenessResult | None:
        required, observe = self.requirement(request, tenant, "face")
        if not required:
            return None
        if self.face is None:
            raise NotImplementedYet(
                "liveness was required but this service has no face liveness pack installed"
            )
        return LivenessResult(self.face.assess(prepared.image, prepared.finding.face), observe)

    def voice_result(
        self,
        request: RequestPolicy,
        tenant: str,
        wave16k: Waveform,
        segments: Sequence[SpeechSegment],
        *,
        declared_narrowband: bool = False,
    ) -> LivenessResult | None:
        """``declared_narrowband``: the request sent 8 kHz or G.711 audio (otherwise the
        bandwidth is measured on the audio)."""
        required, observe = self.requirement(request, tenant, "voice")
        if not required:
            return None
        assessment = self.assess_voice(
            tenant, wave16k, segments, declared_narrowband=declared_narrowband
        )
        return LivenessResult(assessment, observe)

    def assess_voice(
        self,
        tenant: str,
        wave16k: Waveform,
        segments: Sequence[SpeechSegment],
        *,
        declared_narrowband: bool = False,
        aasist_log_odds: float | None = None,
    ) -> LivenessAssessment:
        """The voice spoofing assessment under ``tenant``'s policy, for every voice path
        (clips, CheckLiveness, each window of a live call): telephone-band audio, declared or
        measured, is scored by the telephone-band model, and fails with
        NARROWBAND_NOT_ALLOWED where the tenant requires wideband."""
        if self.voice is None:
            raise NotImplementedYet(
                "liveness was required but this service has no voice anti-spoofing pack installed"
            )
        bandwidth = assess_bandwidth(wave16k, segments, declared=declared_narrowband)
        assessment = self.voice.assess(
            wave16k, segments, bandwidth=bandwidth, aasist_log_odds=aasist_log_odds
        )
        if not bandwidth.narrowband or self._policy(tenant).allow_narrowband_voice:
            return assessment
        return replace(
            assessment,
            live=False,
            reasons=(
                (
                    NARROWBAND_NOT_ALLOWED,
                    "telephone-band audio cannot be checked for synthetic speech as "
                    f"reliably as wideband audio, and this tenant requires wideband "
                    f"({bandwidth.detail})",
                ),
                *assessment.reasons,
            ),
        )


class LivenessChecks:
    """CheckLiveness and StartLivenessChallenge: liveness alone, without matching."""

    def __init__(
        self,
        gate: LivenessGate,
        face_pipeline: FacePipeline,
        pool: InferencePool,
        issuer: ChallengeIssuer,
        *,
        identity_threshold: float,
        max_frames: int = 32,
        max_subject_id_length: int = 128,
        audio_limits: AudioLimits,
        av_sync: AvSyncChecker | None = None,
        face_shape: FaceShapeModel | None = None,
    ) -> None:
        self.gate = gate
        self.face_pipeline = face_pipeline
        self.pool = pool
        self.issuer = issuer
        self.identity_threshold = identity_threshold
        self.max_subject_id_length = max_subject_id_length
        self.max_frames = max_frames
        self.av_sync = av_sync or AvSyncChecker()
        self.face_shape = face_shape
        self.audio_limits = audio_limits

    def start_challenge(self, tenant: str, subject_id: str = "") -> Challenge:
        """A challenge redeemable in ``tenant`` only and, with ``subject_id``, only by
        VerifyFace or EnrollFace of that subject."""
        self._face_checker()
        tenant = validate_tenant(tenant)
        if subject_id:
            subject_id = validate_subject_id(subject_id, self.max_subject_id_length)
        return self.issuer.issue(tenant, subject_id)

    def check_image(self, image: bytes) -> LivenessAssessment:
        checker = self._face_checker()
        prepared = self.pool.run(self.face_pipeline.prepare, image)
        return self.pool.run(checker.assess, prepared.image, prepared.finding.face)

    def validate(self, capture: LiveCapture) -> None:
        """What can be checked about a capture before any inference (its frame count, the
        frame rate its audio needs): InvalidInput if bad, so a face request sent with a
        broken capture fails before its image is processed."""
        self._face_checker()
        validate_challenge_answer(capture.challenge_id, capture.nonce)
        if len(capture.frames) < 2:
            raise InvalidInput("send at least two frames for a multi-frame liveness check")
        if len(capture.frames) > self.max_frames:
            raise InvalidInput(f"at most {self.max_frames} frames per liveness check")
        if not math.isfinite(capture.fps) or capture.fps < 0:
            raise InvalidInput("fps must be the frames' rate (> 0), or 0 when it is not known")
        if capture.audio is not None:
            self.av_sync.validate_frame_rate(capture.fps)

    def vouch_for(
        self, capture: LiveCapture, binding: CaptureBinding, request: RequestPolicy, tenant: str
    ) -> LivenessResult:
        """Liveness of the faces of a decision from the capture sent with them:
        ``check_frames`` bound to those faces and the subject; blocking unless observe mode."""
        _, observe = self.gate.requirement(request, tenant, "face")
        assessment, redemption = self._assess_capture(capture, tenant, binding)
        return LivenessResult(assessment, observe, redemption)

    def give_back(self, result: LivenessResult | None) -> None:
        """Make the challenge ``result`` used up pending again: its request failed afterwards
        (the store was unavailable) without a verdict, and its retry may answer it again."""
        if result is None or result.redemption is None:
            return
        try:
            self.issuer.give_back(result.redemption)
        except Unavailable:  # the request fails with its own error all the same
            logger.warning("a redeemed liveness challenge could not be given back")

    def check_frames(
        self, capture: LiveCapture, *, tenant: str, binding: CaptureBinding | None = None
    ) -> LivenessAssessment:
        """Liveness over a burst of frames: the face checker (motion included), whether every
        frame shows the same person (``identity_continuity``), whether the face blinked
        (``eye_blink``, informational), then the active challenge when one is answered and
        the audio-visual sync check when the frames come with their audio. A change of
        person, a failed challenge or an evaluated, failed sync check makes the sample not
        live (IDENTITY_CHANGED / CHALLENGE_FAILED / AV_SYNC_FAILED).

        With a ``binding`` (VerifyFace, IdentifyFace, EnrollFace), the faces sent with the
        capture join the continuity check and, when the decision names an enrolled subject,
        the frames' reference face must match its template at the request's operating point
        (``capture_matches_subject``), so the live person is the subject.

        The challenge is looked up before any work (an unknown, expired or forged one fails
        at once) and redeemed only after every frame has been decoded and assessed, just
        before the verdict: a request that fails before then (a bad frame, a busy server)
        does not use it up, and of two requests answering it at once only one gets a
        verdict (the other: ChallengeInvalid)."""
        return self._assess_capture(capture, tenant, binding)[0]

    def _assess_capture(
        self, capture: LiveCapture, tenant: str, binding: CaptureBinding | None
    ) -> tuple[LivenessAssessment, Redemption | None]:
        """``check_frames``, and the challenge it redeemed (None: none answered)."""
        checker = self._face_checker()
        tenant = validate_tenant(tenant)
        self.validate(capture)
        challenge = (
            self.issuer.look_up(
                capture.challenge_id,
                capture.nonce,
                tenant=tenant,
                # a challenge names its subject in NFC; a legacy id is stored in another form
                subject_id=(
                    unicodedata.normalize("NFC", binding.subject_id) if binding is not None else ""
                ),
            )
            if capture.challenge_id
            else None
        )
        frames, audio, fps = capture.frames, capture.audio, capture.fps
        decoded = self._frames_audio(audio, len(frames), fps) if audio is not None else None
        names = [f"frame {i}" for i in range(len(frames))]
        prepared = prepare_all(self.pool, self.face_pipeline.prepare, frames, names)
        faces = [(p.image, p.finding.face) for p in prepared]
        shape = self.face_shape
        shaping = (  # one task: the shape model serialises its calls anyway
            self.pool.submit(lambda: [shape.landmarks(*f) for f in faces]) if shape else None
        )
        embedding = self.pool.submit(self.face_pipeline.embed, prepared)
        assessment = self.pool.run(checker.assess_frames, faces)
        embeddings = [sample.embedding for sample in embedding.result()]
        shapes = shaping.result() if shaping is not None else None
        sync = (
            self.pool.run(self.av_sync.check, shapes, fps, decoded.samples, decoded.samples_rate_hz)
            if decoded is not None
            else None
        )
        # Every frame is assessed: from here on only the verdict is put together.
        redemption = self.issuer.redeem(challenge) if challenge is not None else None
        checks, reasons = list(assessment.checks), assessment.reasons
        if binding is not None:
            names.extend(name for name, _ in binding.images)
            embeddings.extend(vector for _, vector in binding.images)
        same = identity_continuity(
            embeddings, self.identity_threshold, names, candidates=len(frames)
        )
        jump = largest_jump([face for _, face in faces])
        identity_checks = [
            Check(
                name=IDENTITY_CONTINUITY,
                score=ramp_score(same.lowest_similarity, same.threshold),
                weight=0.0,
                passed=same.passed,
                detail=f"{same.explanation()}; {jump.explanation()}",
            )
        ]
        rejected: list[tuple[str, str]] = []  # each makes the sample not live, score 0
        if not same.passed:
            rejected.append((IDENTITY_CHANGED, same.explanation()))
        if binding is not None:
            reference = embeddings[same.reference]
            need = binding.threshold
            bound: list[tuple[str, float, str, str]] = []  # check, similarity, detail, failure
            if binding.images_at_threshold:
                lowest, name = min(
                    (cosine_similarity(reference, vector), name) for name, vector in binding.images
                )
                shown, needed = shown_against(lowest, need)
                detail = (
                    f"the images against the capture's {names[same.reference]}: lowest "
                    f"similarity {shown} ({name}; need {needed})"
                )
                failure = "an image is not clearly the live person"
                bound.append((IMAGES_MATCH_CAPTURE, lowest, detail, failure))
            if binding.template is not None:
                similarity = cosine_similarity(reference, binding.template)
                shown, needed = shown_against(similarity, need)
                detail = (
                    f"the capture's {names[same.reference]} against the enrolled subject: "
                    f"similarity {shown} (need {needed})"
                )
                failure = "the live capture is not the enrolled subject"
                bound.append((CAPTURE_MATCHES_SUBJECT, similarity, detail, failure))
            for name, similarity, detail, failure in bound:
                identity_checks.append(
                    Check(
                        name=name,
                        score=ramp_score(similarity, need),
                        weight=0.0,
                        passed=similarity >= need,
                        detail=detail,
                    )
                )
                if similarity < need:
                    rejected.append((IDENTITY_CHANGED, f"{failure}: {detail}"))
        checks.extend(identity_checks)
        poses = [p.finding.quality.pose for p in prepared]
        eye_openness = [eye_aspect_ratio(p) for p in shapes] if shapes is not None else None
        if eye_openness is not None:
            seen, detail = observe_blink(poses, eye_openness)
            checks.append(  # informational: its score says whether a blink was seen
                Check(name=EYE_BLINK, score=float(seen), weight=0.0, passed=True, detail=detail)
            )
        if challenge is not None:
            passed, detail = verify_challenge(challenge, poses, eye_openness=eye_openness)
            checks.append(
                Check(
                    name="active_challenge",
                    score=1.0 if passed else 0.0,
                    weight=0.0,
                    passed=passed,
                    detail=detail,
                )
            )
            if not passed:
                rejected.append(("CHALLENGE_FAILED", detail))
        if sync is not None:
            checks.append(sync.check)
            if sync.evaluated and not sync.check.passed:
                rejected.append((AV_SYNC_FAILED, sync.check.detail))
        verdict = LivenessAssessment(
            live=assessment.live and not rejected,
            score=0.0 if rejected else assessment.score,
            threshold=assessment.threshold,
            checks=tuple(checks),
            reasons=one_reason_per_code([*reasons, *rejected]),
        )
        return verdict, redemption

    def _frames_audio(self, audio: AudioInput, n_frames: int, fps: float) -> DecodedAudio:
        """The audio track of a frame sequence, decoded and checked against the frames."""
        decoded = self.pool.run(
            lambda: audio.decode(
                self.audio_limits,
                "the frames' audio",
                working_rate_hz=self.av_sync.sample_rate,
                measure_clipping=False,  # the sync check does not read it
            )
        )
        self.av_sync.validate(n_frames, fps, decoded.duration_s)
        return decoded

    def _face_checker(self) -> FaceLivenessChecker:
        if self.gate.face is None:
            raise NotImplementedYet("no face liveness pack is installed")
        return self.gate.face
