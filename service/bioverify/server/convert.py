"""Domain objects -> protobuf messages (and the few conversions the other way).

Every enum field a request carries is read here, through ``_known``: proto3 enums are open, so
a client built against a newer contract (or a buggy one) can send a number this service has no
name for, and it is INVALID_ARGUMENT naming the field and the valid names, never taken for the
default."""

from __future__ import annotations

from collections.abc import Iterable

from google.protobuf.message import Message

from bioverify.errors import InvalidInput
from bioverify.face.pipeline import FaceFinding
from bioverify.liveness.ports import LivenessAssessment
from bioverify.packs import PackManifest, fitting_samples_digest
from bioverify.scoring import MatchResult
from bioverify.store.ports import SubjectRecord, Template, TemplateSummary
from bioverify.usecases.common import Issue, RequestPolicy
from bioverify.usecases.face import SampleOutcome
from bioverify.usecases.gallery_search import Duplicate, IdentifyResult
from bioverify.usecases.liveness import LiveCapture, LivenessResult
from bioverify.usecases.voice import AudioInput, ClipReport, StreamConfig
from bioverify.v1 import common_pb2, face_pb2, info_pb2, liveness_pb2, subjects_pb2, voice_pb2
from bioverify.voice.audio_decode import AudioEncoding

MODALITY_TO_PROTO = {"face": common_pb2.FACE, "voice": common_pb2.VOICE}
MODALITY_FROM_PROTO: dict[int, str] = {
    common_pb2.MODALITY_UNSPECIFIED: "",
    common_pb2.FACE: "face",
    common_pb2.VOICE: "voice",
}


def _known(message: Message, field: str, label: str = "") -> int:
    """The value of the enum ``field`` of a request ``message``; InvalidInput naming the field
    (``label``, e.g. "clips[1].encoding"; default ``field``) and the valid names when it is a
    number the contract does not define."""
    value: int = getattr(message, field)
    enum = message.DESCRIPTOR.fields_by_name[field].enum_type
    if value not in enum.values_by_number:
        names = ", ".join(v.name for v in enum.values)
        raise InvalidInput(
            f"{label or field} is {value}, which is not a {enum.name} this service knows; "
            f"send one of {names}"
        )
    return value


def modality_from_proto(request: subjects_pb2.ListSubjectsRequest) -> str:
    """The listing's modality filter ("" for every subject)."""
    return MODALITY_FROM_PROTO[_known(request, "modality")]


def refuse_duplicates_from_proto(
    request: face_pb2.EnrollFaceRequest | voice_pb2.EnrollVoiceRequest,
) -> bool:
    """Whether the enrolment's ``duplicate_action`` is DUPLICATE_REFUSE (unspecified: the
    service default, report)."""
    return _known(request, "duplicate_action") == common_pb2.DUPLICATE_REFUSE


def policy_from_proto(policy: common_pb2.Policy) -> RequestPolicy:
    return RequestPolicy(
        require_liveness=policy.require_liveness if policy.HasField("require_liveness") else None,
        operating_point=policy.operating_point,
        observe_only=policy.observe_only,
    )


def match_to_proto(match: MatchResult, model: str) -> common_pb2.MatchScore:
    return common_pb2.MatchScore(
        confidence=match.confidence,
        similarity=match.similarity,
        threshold=match.threshold,
        operating_point=match.operating_point,
        target_fmr=match.target_fmr,
        decision=common_pb2.ACCEPT if match.accepted else common_pb2.REJECT,
        model=model,
    )


def reasons_to_proto(issues: Iterable[Issue]) -> list[common_pb2.Reason]:
    return [common_pb2.Reason(code=i.code, message=i.message) for i in issues]


def finding_to_proto(finding: FaceFinding) -> face_pb2.FaceAnalysis:
    """The finding in the coordinates of the image as the client sent it."""
    face = finding.face
    q = finding.quality
    to_sent = 1.0 / finding.scale
    return face_pb2.FaceAnalysis(
        face=face_pb2.FaceBox(
            x=face.x1 * to_sent,
            y=face.y1 * to_sent,
            width=face.width * to_sent,
            height=face.height * to_sent,
            detection_score=face.score,
            landmarks=[
                face_pb2.Point(x=float(x) * to_sent, y=float(y) * to_sent)
                for x, y in face.landmarks
            ],
        ),
        quality=face_pb2.FaceQuality(
            acceptable=q.ok,
            inter_eye_distance_px=q.inter_ocular_px * to_sent,
            face_height_px=q.face_height_px * to_sent,
            sharpness=q.sharpness,
            brightness=q.brightness,
            dark_fraction=q.dark_fraction,
            bright_fraction=q.bright_fraction,
            yaw_ratio=q.yaw,
            pitch_ratio=q.pitch,
            roll_degrees=q.roll_deg,
            issues=[common_pb2.Reason(code=i.code, message=i.message) for i in q.issues],
        ),
        faces_detected=finding.faces_detected,
        image_width=finding.image_width,
        image_height=finding.image_height,
    )


def sample_analysis_to_proto(sample: SampleOutcome) -> face_pb2.FaceAnalysis | None:
    """An enrolment sample's analysis: the finding, or for an image rejected before one face
    was chosen (MULTIPLE_FACES) how many faces were found and its size; None when nothing is
    known (the image could not be read, no face)."""
    if sample.finding is not None:
        return finding_to_proto(sample.finding)
    if sample.counted is not None:
        return face_pb2.FaceAnalysis(
            faces_detected=sample.counted.faces_detected,
            image_width=sample.counted.image_width,
            image_height=sample.counted.image_height,
        )
    return None


def liveness_to_proto(result: LivenessResult | None) -> common_pb2.LivenessReport:
    if result is None:
        return common_pb2.LivenessReport(checked=False)
    return assessment_to_proto(result.assessment, result.observe_only)


def assessment_to_proto(
    a: LivenessAssessment, observe_only: bool = False
) -> common_pb2.LivenessReport:
    return common_pb2.LivenessReport(
        checked=True,
        live=a.live,
        score=a.score,
        threshold=a.threshold,
        checks=[
            common_pb2.LivenessCheck(
                name=c.name, score=c.score, weight=c.weight, passed=c.passed, detail=c.detail
            )
            for c in a.checks
        ],
        reasons=[common_pb2.Reason(code=code, message=message) for code, message in a.reasons],
        observe_only=observe_only,
    )


def decision_for(
    match: MatchResult | None, retry: tuple[Issue, ...], *liveness: LivenessResult | None
) -> common_pb2.Decision:
    """SPOOF_SUSPECTED over RETRY over the match's own decision; no match yet (a live call
    before enough speech) is RETRY."""
    if any(result is not None and result.blocks for result in liveness):
        return common_pb2.SPOOF_SUSPECTED
    if retry or match is None:
        return common_pb2.RETRY
    return common_pb2.ACCEPT if match.accepted else common_pb2.REJECT


def summary_to_proto(summary: TemplateSummary) -> common_pb2.TemplateInfo:
    return common_pb2.TemplateInfo(
        modality=MODALITY_TO_PROTO.get(summary.modality, common_pb2.MODALITY_UNSPECIFIED),
        model=summary.model,
        sample_count=summary.sample_count,
        created_at=summary.created_at,
        updated_at=summary.updated_at,
    )


def template_to_proto(template: Template) -> common_pb2.TemplateInfo:
    return summary_to_proto(
        TemplateSummary(
            modality=template.modality,
            model=template.model,
            sample_count=template.sample_count,
            created_at=template.created_at,
            updated_at=template.updated_at,
        )
    )


def subject_to_proto(record: SubjectRecord) -> subjects_pb2.Subject:
    return subjects_pb2.Subject(
        subject_id=record.subject_id,
        tenant=record.tenant,
        metadata=dict(record.metadata),
        templates=[summary_to_proto(t) for t in record.templates],
        created_at=record.created_at,
        updated_at=record.updated_at,
        metadata_unreadable=record.unreadable_metadata,
    )


def pack_to_proto(pack: PackManifest, role: str, active_point: str) -> info_pb2.ModelInfo:
    info = info_pb2.ModelInfo(
        pack=pack.id,
        # "face-liveness" and "voice-antispoof" packs check faces and voices
        modality=MODALITY_TO_PROTO.get(
            pack.modality.split("-")[0], common_pb2.MODALITY_UNSPECIFIED
        ),
        role=role,
        version=pack.version,
        licence=pack.licence,
        description=pack.description,
        files=[
            info_pb2.ModelFile(path=f.path, sha256=f.sha256, size_bytes=f.size_bytes)
            for f in pack.files.values()
        ],
        operating_points=[
            info_pb2.OperatingPoint(
                name=p.name,
                target_fmr=p.target_fmr,
                threshold=p.threshold,
                is_default=p.name == active_point,
            )
            for p in pack.operating_points
        ],
        embedding_dim=pack.embedding_dim,
        fitting_samples_sha256=fitting_samples_digest(pack.raw),
    )
    if pack.calibration is not None:
        c = pack.calibration
        info.calibration.CopyFrom(
            info_pb2.Calibration(
                method=c.method,
                slope=c.slope,
                intercept=c.intercept,
                fitted_on=c.fitted_on,
                n_genuine=c.n_genuine,
                n_impostor=c.n_impostor,
            )
        )
    return info


def audio_from_proto(audio: voice_pb2.Audio, field: str) -> AudioInput:
    """``field``: where the request holds ``audio`` (e.g. "clip_a"), named in errors."""
    return AudioInput(
        data=audio.data,
        encoding=AUDIO_ENCODING_FROM_PROTO[_known(audio, "encoding", f"{field}.encoding")],
        sample_rate_hz=audio.sample_rate_hz or None,
        channels=audio.channels or None,
        channel=audio.channel if audio.HasField("channel") else None,
    )


def live_capture_from_proto(
    frames: liveness_pb2.FrameSequence, challenge_id: str, nonce: str, field: str
) -> LiveCapture:
    """``field``: where the request holds ``frames`` (e.g. "frames"), named in errors."""
    return LiveCapture(
        frames=list(frames.frames),
        challenge_id=challenge_id,
        nonce=nonce,
        fps=frames.fps,
        audio=audio_from_proto(frames.audio, f"{field}.audio")
        if frames.HasField("audio")
        else None,
    )


def optional_live_capture(
    request: face_pb2.VerifyFaceRequest | face_pb2.IdentifyFaceRequest | face_pb2.EnrollFaceRequest,
) -> LiveCapture | None:
    """The ``live_capture`` of a face request (VerifyFace, IdentifyFace, EnrollFace), if sent."""
    if not request.HasField("live_capture"):
        return None
    capture: liveness_pb2.LiveCapture = request.live_capture
    return live_capture_from_proto(
        capture.frames, capture.challenge_id, capture.nonce, "live_capture.frames"
    )


def stream_config_from_proto(config: voice_pb2.VoiceStreamConfig) -> StreamConfig:
    return StreamConfig(
        subject_id=config.subject_id,
        tenant=config.tenant,
        encoding=AUDIO_ENCODING_FROM_PROTO[_known(config, "encoding", "config.encoding")],
        sample_rate_hz=config.sample_rate_hz,
        channels=config.channels,
        channel=config.channel if config.HasField("channel") else None,
        policy=policy_from_proto(config.policy),
        interim_every_speech_s=config.interim_every_speech_seconds,
    )


AUDIO_ENCODING_FROM_PROTO: dict[int, AudioEncoding] = {
    voice_pb2.AUDIO_ENCODING_UNSPECIFIED: AudioEncoding.AUTO,
    voice_pb2.PCM_S16LE: AudioEncoding.PCM_S16LE,
    voice_pb2.MULAW: AudioEncoding.MULAW,
    voice_pb2.ALAW: AudioEncoding.ALAW,
}


def clip_report_to_proto(report: ClipReport | None) -> voice_pb2.VoiceQuality:
    if report is None:
        return voice_pb2.VoiceQuality()
    q = report.quality
    return voice_pb2.VoiceQuality(
        acceptable=report.acceptable,
        duration_seconds=report.duration_s,
        net_speech_seconds=q.net_speech_s if q else 0.0,
        snr_db=q.snr_db if q else 0.0,
        clipping_fraction=q.clipping_fraction if q else 0.0,
        input_sample_rate_hz=report.input_sample_rate_hz,
        input_channels=report.input_channels,
        issues=reasons_to_proto(report.issues),
    )


def candidates_to_proto(result: IdentifyResult) -> list[common_pb2.Candidate]:
    return [
        common_pb2.Candidate(
            subject_id=c.subject_id, confidence=c.confidence, similarity=c.similarity, rank=c.rank
        )
        for c in result.candidates
    ]


def identify_decision(
    result: IdentifyResult, retry: tuple[Issue, ...], liveness: LivenessResult | None = None
) -> common_pb2.Decision:
    if liveness is not None and liveness.blocks:
        return common_pb2.SPOOF_SUSPECTED
    if retry:
        return common_pb2.RETRY
    return common_pb2.ACCEPT if result.found else common_pb2.REJECT


def duplicates_to_proto(duplicates: Iterable[Duplicate]) -> list[common_pb2.DuplicateMatch]:
    return [
        common_pb2.DuplicateMatch(
            subject_id=d.subject_id, confidence=d.confidence, similarity=d.similarity
        )
        for d in duplicates
    ]
