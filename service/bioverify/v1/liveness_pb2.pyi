from bioverify.v1 import common_pb2 as _common_pb2
from bioverify.v1 import voice_pb2 as _voice_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ChallengeAction(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CHALLENGE_ACTION_UNSPECIFIED: _ClassVar[ChallengeAction]
    TURN_HEAD_LEFT: _ClassVar[ChallengeAction]
    TURN_HEAD_RIGHT: _ClassVar[ChallengeAction]
    BLINK: _ClassVar[ChallengeAction]
    LOOK_UP: _ClassVar[ChallengeAction]
    LOOK_DOWN: _ClassVar[ChallengeAction]
CHALLENGE_ACTION_UNSPECIFIED: ChallengeAction
TURN_HEAD_LEFT: ChallengeAction
TURN_HEAD_RIGHT: ChallengeAction
BLINK: ChallengeAction
LOOK_UP: ChallengeAction
LOOK_DOWN: ChallengeAction

class StartLivenessChallengeRequest(_message.Message):
    __slots__ = ("tenant", "subject_id")
    TENANT_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_ID_FIELD_NUMBER: _ClassVar[int]
    tenant: str
    subject_id: str
    def __init__(self, tenant: _Optional[str] = ..., subject_id: _Optional[str] = ...) -> None: ...

class LivenessChallenge(_message.Message):
    __slots__ = ("challenge_id", "nonce", "actions", "expires_at")
    CHALLENGE_ID_FIELD_NUMBER: _ClassVar[int]
    NONCE_FIELD_NUMBER: _ClassVar[int]
    ACTIONS_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    challenge_id: str
    nonce: str
    actions: _containers.RepeatedScalarFieldContainer[ChallengeAction]
    expires_at: str
    def __init__(self, challenge_id: _Optional[str] = ..., nonce: _Optional[str] = ..., actions: _Optional[_Iterable[_Union[ChallengeAction, str]]] = ..., expires_at: _Optional[str] = ...) -> None: ...

class FrameSequence(_message.Message):
    __slots__ = ("frames", "fps", "audio")
    FRAMES_FIELD_NUMBER: _ClassVar[int]
    FPS_FIELD_NUMBER: _ClassVar[int]
    AUDIO_FIELD_NUMBER: _ClassVar[int]
    frames: _containers.RepeatedScalarFieldContainer[bytes]
    fps: float
    audio: _voice_pb2.Audio
    def __init__(self, frames: _Optional[_Iterable[bytes]] = ..., fps: _Optional[float] = ..., audio: _Optional[_Union[_voice_pb2.Audio, _Mapping]] = ...) -> None: ...

class LiveCapture(_message.Message):
    __slots__ = ("frames", "challenge_id", "nonce")
    FRAMES_FIELD_NUMBER: _ClassVar[int]
    CHALLENGE_ID_FIELD_NUMBER: _ClassVar[int]
    NONCE_FIELD_NUMBER: _ClassVar[int]
    frames: FrameSequence
    challenge_id: str
    nonce: str
    def __init__(self, frames: _Optional[_Union[FrameSequence, _Mapping]] = ..., challenge_id: _Optional[str] = ..., nonce: _Optional[str] = ...) -> None: ...

class CheckLivenessRequest(_message.Message):
    __slots__ = ("image", "frames", "clip", "challenge_id", "nonce", "tenant", "policy")
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    FRAMES_FIELD_NUMBER: _ClassVar[int]
    CLIP_FIELD_NUMBER: _ClassVar[int]
    CHALLENGE_ID_FIELD_NUMBER: _ClassVar[int]
    NONCE_FIELD_NUMBER: _ClassVar[int]
    TENANT_FIELD_NUMBER: _ClassVar[int]
    POLICY_FIELD_NUMBER: _ClassVar[int]
    image: bytes
    frames: FrameSequence
    clip: _voice_pb2.Audio
    challenge_id: str
    nonce: str
    tenant: str
    policy: _common_pb2.Policy
    def __init__(self, image: _Optional[bytes] = ..., frames: _Optional[_Union[FrameSequence, _Mapping]] = ..., clip: _Optional[_Union[_voice_pb2.Audio, _Mapping]] = ..., challenge_id: _Optional[str] = ..., nonce: _Optional[str] = ..., tenant: _Optional[str] = ..., policy: _Optional[_Union[_common_pb2.Policy, _Mapping]] = ...) -> None: ...

class CheckLivenessResponse(_message.Message):
    __slots__ = ("liveness", "decision", "reasons")
    LIVENESS_FIELD_NUMBER: _ClassVar[int]
    DECISION_FIELD_NUMBER: _ClassVar[int]
    REASONS_FIELD_NUMBER: _ClassVar[int]
    liveness: _common_pb2.LivenessReport
    decision: _common_pb2.Decision
    reasons: _containers.RepeatedCompositeFieldContainer[_common_pb2.Reason]
    def __init__(self, liveness: _Optional[_Union[_common_pb2.LivenessReport, _Mapping]] = ..., decision: _Optional[_Union[_common_pb2.Decision, str]] = ..., reasons: _Optional[_Iterable[_Union[_common_pb2.Reason, _Mapping]]] = ...) -> None: ...
