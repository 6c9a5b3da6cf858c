"""The unary RPCs of the sync and asyncio clients: each request builder has the public
signature of its client method and is tagged with the RPC it feeds (``Unary``), so both
clients bind the same table (``client.bind_unary`` / ``aio_client.bind_async_unary``)."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, ParamSpec, TypeVar

from bioverify.v1 import common_pb2, face_pb2, info_pb2, liveness_pb2, subjects_pb2, voice_pb2

P = ParamSpec("P")
R = TypeVar("R")


@dataclass(frozen=True)
class Unary(Generic[P, R]):
    """A request builder and the RPC it feeds: ``client.<service>.<method>`` returning ``R``."""

    build: Callable[P, Any]
    service: str
    method: str
    reply: type[R]


def describe_method(method: Callable[..., Any], rpc: Unary[Any, Any], returns: object) -> None:
    """Give a bound client method its builder's name, docstring and signature (``help()``)."""
    sig = inspect.signature(rpc.build)
    self_param = inspect.Parameter("self", inspect.Parameter.POSITIONAL_ONLY)
    method.__name__ = method.__qualname__ = rpc.build.__name__
    method.__doc__ = rpc.build.__doc__
    setattr(  # noqa: B010 (functions have no declared __signature__)
        method,
        "__signature__",
        sig.replace(parameters=[self_param, *sig.parameters.values()], return_annotation=returns),
    )


def unary(service: str, method: str, reply: type[R]) -> Callable[[Callable[P, Any]], Unary[P, R]]:
    def tag(build: Callable[P, Any]) -> Unary[P, R]:
        return Unary(build, service, method, reply)

    return tag


def policy(
    operating_point: str, require_liveness: bool | None = None, observe_only: bool = False
) -> common_pb2.Policy:
    message = common_pb2.Policy(operating_point=operating_point, observe_only=observe_only)
    if require_liveness is not None:
        message.require_liveness = require_liveness
    return message


def duplicate_action(refuse: bool) -> common_pb2.DuplicateAction:
    return common_pb2.DUPLICATE_REFUSE if refuse else common_pb2.DUPLICATE_REPORT


def audio(
    data: bytes,
    *,
    encoding: str = "",
    sample_rate_hz: int = 0,
    channels: int = 0,
    channel: int | None = None,
) -> voice_pb2.Audio:
    """An audio message: a WAV/FLAC/OGG/MP3 file as is, or raw ``PCM_S16LE``/``MULAW``/
    ``ALAW`` with its sample rate."""
    message = voice_pb2.Audio(
        data=data,
        encoding=encoding or "AUDIO_ENCODING_UNSPECIFIED",
        sample_rate_hz=sample_rate_hz,
        channels=channels,
    )
    if channel is not None:
        message.channel = channel
    return message


def live_capture(
    frames: Sequence[bytes] | None, fps: float, challenge_id: str, nonce: str
) -> liveness_pb2.LiveCapture | None:
    """A face request's ``live_capture`` (None: not sent)."""
    if frames is None:
        if challenge_id or nonce or fps:
            raise ValueError("fps and a challenge's answer go with live_frames")
        return None
    return liveness_pb2.LiveCapture(
        frames=frame_sequence(frames, fps), challenge_id=challenge_id, nonce=nonce
    )


# -- face -----------------------------------------------------------------------------------
@unary("face", "CompareFaces", face_pb2.CompareFacesResponse)
def compare_faces(
    image_a: bytes,
    image_b: bytes,
    *,
    operating_point: str = "",
    require_liveness: bool | None = None,
    observe_only: bool = False,
) -> face_pb2.CompareFacesRequest:
    return face_pb2.CompareFacesRequest(
        image_a=image_a,
        image_b=image_b,
        policy=policy(operating_point, require_liveness, observe_only),
    )


@unary("face", "EnrollFace", face_pb2.EnrollFaceResponse)
def enroll_face(
    subject_id: str,
    images: Sequence[bytes],
    *,
    metadata: Mapping[str, str] | None = None,
    tenant: str = "",
    replace: bool = False,
    dry_run: bool = False,
    refuse_duplicates: bool = False,
    require_liveness: bool | None = None,
    observe_only: bool = False,
    live_frames: Sequence[bytes] | None = None,
    fps: float = 0.0,
    challenge_id: str = "",
    nonce: str = "",
) -> face_pb2.EnrollFaceRequest:
    """``refuse_duplicates``: ALREADY_EXISTS when the face matches another subject.
    ``live_frames`` (with ``fps`` and an answered challenge's ``challenge_id``/``nonce``):
    frames of one capture vouching that ``images`` are of a live person, as in
    ``verify_face``; a capture judged not live enrolls nothing."""
    return face_pb2.EnrollFaceRequest(
        subject_id=subject_id,
        images=list(images),
        metadata=dict(metadata or {}),
        tenant=tenant,
        replace=replace,
        dry_run=dry_run,
        duplicate_action=duplicate_action(refuse_duplicates),
        policy=policy("", require_liveness, observe_only),
        live_capture=live_capture(live_frames, fps, challenge_id, nonce),
    )


@unary("face", "VerifyFace", face_pb2.VerifyFaceResponse)
def verify_face(
    subject_id: str,
    image: bytes,
    *,
    tenant: str = "",
    operating_point: str = "",
    require_liveness: bool | None = None,
    observe_only: bool = False,
    live_frames: Sequence[bytes] | None = None,
    fps: float = 0.0,
    challenge_id: str = "",
    nonce: str = "",
) -> face_pb2.VerifyFaceRequest:
    """``live_frames`` (with ``fps`` and an answered challenge's ``challenge_id``/``nonce``):
    frames of the same capture vouching that ``image`` is of a live person; their liveness
    is then checked, and ``image`` must show their person."""
    return face_pb2.VerifyFaceRequest(
        subject_id=subject_id,
        image=image,
        tenant=tenant,
        policy=policy(operating_point, require_liveness, observe_only),
        live_capture=live_capture(live_frames, fps, challenge_id, nonce),
    )


@unary("face", "IdentifyFace", face_pb2.IdentifyFaceResponse)
def identify_face(
    image: bytes,
    *,
    top_k: int = 5,
    min_confidence: float = 0.0,
    tenant: str = "",
    operating_point: str = "",
    require_liveness: bool | None = None,
    observe_only: bool = False,
    live_frames: Sequence[bytes] | None = None,
    fps: float = 0.0,
    challenge_id: str = "",
    nonce: str = "",
) -> face_pb2.IdentifyFaceRequest:
    """``operating_point`` (e.g. ``fmr_1e-4``): judge the search there; empty: the service
    default, made stricter as the tenant's gallery grows (the reply names the point used).
    ``live_frames`` (with ``fps`` and an answered challenge's ``challenge_id``/``nonce``):
    frames of the same capture vouching that ``image`` is of a live person, as in
    ``verify_face``."""
    return face_pb2.IdentifyFaceRequest(
        image=image,
        top_k=top_k,
        min_confidence=min_confidence,
        tenant=tenant,
        policy=policy(operating_point, require_liveness, observe_only),
        live_capture=live_capture(live_frames, fps, challenge_id, nonce),
    )


# -- voice ----------------------------------------------------------------------------------
@unary("voice", "CompareVoices", voice_pb2.CompareVoicesResponse)
def compare_voices(
    clip_a: voice_pb2.Audio, clip_b: voice_pb2.Audio, *, operating_point: str = ""
) -> voice_pb2.CompareVoicesRequest:
    return voice_pb2.CompareVoicesRequest(
        clip_a=clip_a, clip_b=clip_b, policy=policy(operating_point)
    )


@unary("voice", "EnrollVoice", voice_pb2.EnrollVoiceResponse)
def enroll_voice(
    subject_id: str,
    clips: Sequence[voice_pb2.Audio],
    *,
    metadata: Mapping[str, str] | None = None,
    tenant: str = "",
    replace: bool = False,
    dry_run: bool = False,
    refuse_duplicates: bool = False,
    require_liveness: bool | None = None,
    observe_only: bool = False,
) -> voice_pb2.EnrollVoiceRequest:
    """``refuse_duplicates``: ALREADY_EXISTS when the voice matches another subject."""
    return voice_pb2.EnrollVoiceRequest(
        subject_id=subject_id,
        clips=list(clips),
        metadata=dict(metadata or {}),
        tenant=tenant,
        replace=replace,
        dry_run=dry_run,
        duplicate_action=duplicate_action(refuse_duplicates),
        policy=policy("", require_liveness, observe_only),
    )


@unary("voice", "VerifyVoice", voice_pb2.VerifyVoiceResponse)
def verify_voice(
    subject_id: str,
    clip: voice_pb2.Audio,
    *,
    tenant: str = "",
    operating_point: str = "",
    require_liveness: bool | None = None,
    observe_only: bool = False,
) -> voice_pb2.VerifyVoiceRequest:
    return voice_pb2.VerifyVoiceRequest(
        subject_id=subject_id,
        clip=clip,
        tenant=tenant,
        policy=policy(operating_point, require_liveness, observe_only),
    )


@unary("voice", "IdentifyVoice", voice_pb2.IdentifyVoiceResponse)
def identify_voice(
    clip: voice_pb2.Audio,
    *,
    top_k: int = 5,
    min_confidence: float = 0.0,
    tenant: str = "",
    operating_point: str = "",
    require_liveness: bool | None = None,
    observe_only: bool = False,
) -> voice_pb2.IdentifyVoiceRequest:
    """``operating_point``: as in ``identify_face``."""
    return voice_pb2.IdentifyVoiceRequest(
        clip=clip,
        top_k=top_k,
        min_confidence=min_confidence,
        tenant=tenant,
        policy=policy(operating_point, require_liveness, observe_only),
    )


# -- liveness -------------------------------------------------------------------------------
@unary("liveness", "CheckLiveness", liveness_pb2.CheckLivenessResponse)
def check_liveness(
    *,
    image: bytes | None = None,
    frames: Sequence[bytes] | None = None,
    clip: voice_pb2.Audio | None = None,
    challenge_id: str = "",
    nonce: str = "",
    tenant: str = "",
    fps: float = 0.0,
) -> liveness_pb2.CheckLivenessRequest:
    """Liveness alone, for exactly one of an image, a frame sequence (with its ``fps`` and
    the ``challenge_id``/``nonce`` of an active challenge) or a voice clip."""
    given = [x is not None for x in (image, frames, clip)]
    if sum(given) != 1:
        raise ValueError("give exactly one of image, frames or clip")
    request = liveness_pb2.CheckLivenessRequest(
        challenge_id=challenge_id, nonce=nonce, tenant=tenant
    )
    if image is not None:
        request.image = image
    elif frames is not None:
        request.frames.CopyFrom(frame_sequence(frames, fps))
    elif clip is not None:
        request.clip.CopyFrom(clip)
    return request


def frame_sequence(frames: Sequence[bytes], fps: float = 0.0) -> liveness_pb2.FrameSequence:
    return liveness_pb2.FrameSequence(frames=list(frames), fps=fps)


@unary("liveness", "StartLivenessChallenge", liveness_pb2.LivenessChallenge)
def start_liveness_challenge(
    *, tenant: str = "", subject_id: str = ""
) -> liveness_pb2.StartLivenessChallengeRequest:
    """A random challenge (head turns, nods, blinks) with a single-use nonce and an expiry,
    redeemable only in ``tenant`` and, with ``subject_id``, only by that subject's
    ``verify_face`` or ``enroll_face``."""
    return liveness_pb2.StartLivenessChallengeRequest(tenant=tenant, subject_id=subject_id)


# -- subjects and info ----------------------------------------------------------------------
@unary("subjects", "GetSubject", subjects_pb2.Subject)
def get_subject(subject_id: str, *, tenant: str = "") -> subjects_pb2.GetSubjectRequest:
    return subjects_pb2.GetSubjectRequest(subject_id=subject_id, tenant=tenant)


@unary("subjects", "ListSubjects", subjects_pb2.ListSubjectsResponse)
def list_subjects(
    *, tenant: str = "", page_size: int = 0, page_token: str = ""
) -> subjects_pb2.ListSubjectsRequest:
    return subjects_pb2.ListSubjectsRequest(
        tenant=tenant, page_size=page_size, page_token=page_token
    )


@unary("subjects", "DeleteSubject", subjects_pb2.DeleteSubjectResponse)
def delete_subject(subject_id: str, *, tenant: str = "") -> subjects_pb2.DeleteSubjectRequest:
    return subjects_pb2.DeleteSubjectRequest(subject_id=subject_id, tenant=tenant)


@unary("info", "GetServiceInfo", info_pb2.ServiceInfo)
def service_info() -> info_pb2.GetServiceInfoRequest:
    return info_pb2.GetServiceInfoRequest()


def voice_stream_config(
    subject_id: str,
    *,
    encoding: str,
    sample_rate_hz: int,
    channels: int,
    channel: int | None,
    tenant: str,
    interim_every_speech_seconds: float,
    operating_point: str,
    require_liveness: bool | None,
    observe_only: bool,
) -> voice_pb2.VoiceStreamRequest:
    """The first message of a live-call stream."""
    config = voice_pb2.VoiceStreamConfig(
        subject_id=subject_id,
        tenant=tenant,
        encoding=voice_pb2.AudioEncoding.Value(encoding),
        sample_rate_hz=sample_rate_hz,
        channels=channels,
        interim_every_speech_seconds=interim_every_speech_seconds,
        policy=policy(operating_point, require_liveness, observe_only),
    )
    if channel is not None:
        config.channel = channel
    return voice_pb2.VoiceStreamRequest(config=config)
