"""Request messages shared by the sync and asyncio clients."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from bioverify.v1 import common_pb2, face_pb2, liveness_pb2, voice_pb2


def policy(
    operating_point: str, require_liveness: bool | None = None, observe_only: bool = False
) -> common_pb2.Policy:
    message = common_pb2.Policy(operating_point=operating_point, observe_only=observe_only)
    if require_liveness is not None:
        message.require_liveness = require_liveness
    return message


def duplicate_action(refuse: bool) -> common_pb2.DuplicateAction:
    return common_pb2.DUPLICATE_REFUSE if refuse else common_pb2.DUPLICATE_REPORT


def check_liveness(
    *,
    image: bytes | None,
    frames: Sequence[bytes] | None,
    clip: voice_pb2.Audio | None,
    challenge_id: str,
    nonce: str,
    tenant: str,
) -> liveness_pb2.CheckLivenessRequest:
    given = [x is not None for x in (image, frames, clip)]
    if sum(given) != 1:
        raise ValueError("give exactly one of image, frames or clip")
    request = liveness_pb2.CheckLivenessRequest(
        challenge_id=challenge_id, nonce=nonce, tenant=tenant
    )
    if image is not None:
        request.image = image
    elif frames is not None:
        request.frames.frames.extend(frames)
    elif clip is not None:
        request.clip.CopyFrom(clip)
    return request


def compare_faces(
    image_a: bytes,
    image_b: bytes,
    operating_point: str,
    *,
    require_liveness: bool | None = None,
    observe_only: bool = False,
) -> face_pb2.CompareFacesRequest:
    return face_pb2.CompareFacesRequest(
        image_a=image_a,
        image_b=image_b,
        policy=policy(operating_point, require_liveness, observe_only),
    )


def enroll_face(
    subject_id: str,
    images: Sequence[bytes],
    metadata: Mapping[str, str] | None,
    tenant: str,
    replace: bool,
    dry_run: bool,
    *,
    refuse_duplicates: bool = False,
    require_liveness: bool | None = None,
    observe_only: bool = False,
) -> face_pb2.EnrollFaceRequest:
    return face_pb2.EnrollFaceRequest(
        subject_id=subject_id,
        images=list(images),
        metadata=dict(metadata or {}),
        tenant=tenant,
        replace=replace,
        dry_run=dry_run,
        duplicate_action=duplicate_action(refuse_duplicates),
        policy=policy("", require_liveness, observe_only),
    )


def verify_face(
    subject_id: str,
    image: bytes,
    tenant: str,
    operating_point: str,
    *,
    require_liveness: bool | None = None,
    observe_only: bool = False,
) -> face_pb2.VerifyFaceRequest:
    return face_pb2.VerifyFaceRequest(
        subject_id=subject_id,
        image=image,
        tenant=tenant,
        policy=policy(operating_point, require_liveness, observe_only),
    )


def identify_face(
    image: bytes,
    top_k: int,
    min_confidence: float,
    tenant: str,
    *,
    require_liveness: bool | None = None,
    observe_only: bool = False,
) -> face_pb2.IdentifyFaceRequest:
    return face_pb2.IdentifyFaceRequest(
        image=image,
        top_k=top_k,
        min_confidence=min_confidence,
        tenant=tenant,
        policy=policy("", require_liveness, observe_only),
    )


def audio(
    data: bytes, encoding: str, sample_rate_hz: int, channels: int, channel: int | None
) -> voice_pb2.Audio:
    message = voice_pb2.Audio(
        data=data,
        encoding=encoding or "AUDIO_ENCODING_UNSPECIFIED",
        sample_rate_hz=sample_rate_hz,
        channels=channels,
    )
    if channel is not None:
        message.channel = channel
    return message


def compare_voices(
    clip_a: voice_pb2.Audio, clip_b: voice_pb2.Audio, operating_point: str
) -> voice_pb2.CompareVoicesRequest:
    return voice_pb2.CompareVoicesRequest(
        clip_a=clip_a, clip_b=clip_b, policy=policy(operating_point)
    )


def enroll_voice(
    subject_id: str,
    clips: Sequence[voice_pb2.Audio],
    metadata: Mapping[str, str] | None,
    tenant: str,
    replace: bool,
    dry_run: bool,
    *,
    refuse_duplicates: bool = False,
    require_liveness: bool | None = None,
    observe_only: bool = False,
) -> voice_pb2.EnrollVoiceRequest:
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


def verify_voice(
    subject_id: str,
    clip: voice_pb2.Audio,
    tenant: str,
    operating_point: str,
    *,
    require_liveness: bool | None = None,
    observe_only: bool = False,
) -> voice_pb2.VerifyVoiceRequest:
    return voice_pb2.VerifyVoiceRequest(
        subject_id=subject_id,
        clip=clip,
        tenant=tenant,
        policy=policy(operating_point, require_liveness, observe_only),
    )


def identify_voice(
    clip: voice_pb2.Audio,
    top_k: int,
    min_confidence: float,
    tenant: str,
    *,
    require_liveness: bool | None = None,
    observe_only: bool = False,
) -> voice_pb2.IdentifyVoiceRequest:
    return voice_pb2.IdentifyVoiceRequest(
        clip=clip,
        top_k=top_k,
        min_confidence=min_confidence,
        tenant=tenant,
        policy=policy("", require_liveness, observe_only),
    )


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
