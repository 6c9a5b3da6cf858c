from bioverify.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class AudioEncoding(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    AUDIO_ENCODING_UNSPECIFIED: _ClassVar[AudioEncoding]
    PCM_S16LE: _ClassVar[AudioEncoding]
    MULAW: _ClassVar[AudioEncoding]
    ALAW: _ClassVar[AudioEncoding]
AUDIO_ENCODING_UNSPECIFIED: AudioEncoding
PCM_S16LE: AudioEncoding
MULAW: AudioEncoding
ALAW: AudioEncoding

class Audio(_message.Message):
    __slots__ = ("data", "encoding", "sample_rate_hz", "channels", "channel")
    DATA_FIELD_NUMBER: _ClassVar[int]
    ENCODING_FIELD_NUMBER: _ClassVar[int]
    SAMPLE_RATE_HZ_FIELD_NUMBER: _ClassVar[int]
    CHANNELS_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    data: bytes
    encoding: AudioEncoding
    sample_rate_hz: int
    channels: int
    channel: int
    def __init__(self, data: _Optional[bytes] = ..., encoding: _Optional[_Union[AudioEncoding, str]] = ..., sample_rate_hz: _Optional[int] = ..., channels: _Optional[int] = ..., channel: _Optional[int] = ...) -> None: ...

class VoiceQuality(_message.Message):
    __slots__ = ("acceptable", "duration_seconds", "net_speech_seconds", "snr_db", "clipping_fraction", "input_sample_rate_hz", "input_channels", "issues")
    ACCEPTABLE_FIELD_NUMBER: _ClassVar[int]
    DURATION_SECONDS_FIELD_NUMBER: _ClassVar[int]
    NET_SPEECH_SECONDS_FIELD_NUMBER: _ClassVar[int]
    SNR_DB_FIELD_NUMBER: _ClassVar[int]
    CLIPPING_FRACTION_FIELD_NUMBER: _ClassVar[int]
    INPUT_SAMPLE_RATE_HZ_FIELD_NUMBER: _ClassVar[int]
    INPUT_CHANNELS_FIELD_NUMBER: _ClassVar[int]
    ISSUES_FIELD_NUMBER: _ClassVar[int]
    acceptable: bool
    duration_seconds: float
    net_speech_seconds: float
    snr_db: float
    clipping_fraction: float
    input_sample_rate_hz: int
    input_channels: int
    issues: _containers.RepeatedCompositeFieldContainer[_common_pb2.Reason]
    def __init__(self, acceptable: _Optional[bool] = ..., duration_seconds: _Optional[float] = ..., net_speech_seconds: _Optional[float] = ..., snr_db: _Optional[float] = ..., clipping_fraction: _Optional[float] = ..., input_sample_rate_hz: _Optional[int] = ..., input_channels: _Optional[int] = ..., issues: _Optional[_Iterable[_Union[_common_pb2.Reason, _Mapping]]] = ...) -> None: ...

class CompareVoicesRequest(_message.Message):
    __slots__ = ("clip_a", "clip_b", "policy")
    CLIP_A_FIELD_NUMBER: _ClassVar[int]
    CLIP_B_FIELD_NUMBER: _ClassVar[int]
    POLICY_FIELD_NUMBER: _ClassVar[int]
    clip_a: Audio
    clip_b: Audio
    policy: _common_pb2.Policy
    def __init__(self, clip_a: _Optional[_Union[Audio, _Mapping]] = ..., clip_b: _Optional[_Union[Audio, _Mapping]] = ..., policy: _Optional[_Union[_common_pb2.Policy, _Mapping]] = ...) -> None: ...

class CompareVoicesResponse(_message.Message):
    __slots__ = ("match", "quality_a", "quality_b", "liveness_a", "liveness_b", "decision", "reasons")
    MATCH_FIELD_NUMBER: _ClassVar[int]
    QUALITY_A_FIELD_NUMBER: _ClassVar[int]
    QUALITY_B_FIELD_NUMBER: _ClassVar[int]
    LIVENESS_A_FIELD_NUMBER: _ClassVar[int]
    LIVENESS_B_FIELD_NUMBER: _ClassVar[int]
    DECISION_FIELD_NUMBER: _ClassVar[int]
    REASONS_FIELD_NUMBER: _ClassVar[int]
    match: _common_pb2.MatchScore
    quality_a: VoiceQuality
    quality_b: VoiceQuality
    liveness_a: _common_pb2.LivenessReport
    liveness_b: _common_pb2.LivenessReport
    decision: _common_pb2.Decision
    reasons: _containers.RepeatedCompositeFieldContainer[_common_pb2.Reason]
    def __init__(self, match: _Optional[_Union[_common_pb2.MatchScore, _Mapping]] = ..., quality_a: _Optional[_Union[VoiceQuality, _Mapping]] = ..., quality_b: _Optional[_Union[VoiceQuality, _Mapping]] = ..., liveness_a: _Optional[_Union[_common_pb2.LivenessReport, _Mapping]] = ..., liveness_b: _Optional[_Union[_common_pb2.LivenessReport, _Mapping]] = ..., decision: _Optional[_Union[_common_pb2.Decision, str]] = ..., reasons: _Optional[_Iterable[_Union[_common_pb2.Reason, _Mapping]]] = ...) -> None: ...

class EnrollVoiceRequest(_message.Message):
    __slots__ = ("subject_id", "clips", "metadata", "tenant", "replace", "policy", "duplicate_action", "dry_run")
    class MetadataEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    SUBJECT_ID_FIELD_NUMBER: _ClassVar[int]
    CLIPS_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    TENANT_FIELD_NUMBER: _ClassVar[int]
    REPLACE_FIELD_NUMBER: _ClassVar[int]
    POLICY_FIELD_NUMBER: _ClassVar[int]
    DUPLICATE_ACTION_FIELD_NUMBER: _ClassVar[int]
    DRY_RUN_FIELD_NUMBER: _ClassVar[int]
    subject_id: str
    clips: _containers.RepeatedCompositeFieldContainer[Audio]
    metadata: _containers.ScalarMap[str, str]
    tenant: str
    replace: bool
    policy: _common_pb2.Policy
    duplicate_action: _common_pb2.DuplicateAction
    dry_run: bool
    def __init__(self, subject_id: _Optional[str] = ..., clips: _Optional[_Iterable[_Union[Audio, _Mapping]]] = ..., metadata: _Optional[_Mapping[str, str]] = ..., tenant: _Optional[str] = ..., replace: _Optional[bool] = ..., policy: _Optional[_Union[_common_pb2.Policy, _Mapping]] = ..., duplicate_action: _Optional[_Union[_common_pb2.DuplicateAction, str]] = ..., dry_run: _Optional[bool] = ...) -> None: ...

class VoiceSampleResult(_message.Message):
    __slots__ = ("index", "accepted", "reasons", "quality", "liveness")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    ACCEPTED_FIELD_NUMBER: _ClassVar[int]
    REASONS_FIELD_NUMBER: _ClassVar[int]
    QUALITY_FIELD_NUMBER: _ClassVar[int]
    LIVENESS_FIELD_NUMBER: _ClassVar[int]
    index: int
    accepted: bool
    reasons: _containers.RepeatedCompositeFieldContainer[_common_pb2.Reason]
    quality: VoiceQuality
    liveness: _common_pb2.LivenessReport
    def __init__(self, index: _Optional[int] = ..., accepted: _Optional[bool] = ..., reasons: _Optional[_Iterable[_Union[_common_pb2.Reason, _Mapping]]] = ..., quality: _Optional[_Union[VoiceQuality, _Mapping]] = ..., liveness: _Optional[_Union[_common_pb2.LivenessReport, _Mapping]] = ...) -> None: ...

class EnrollVoiceResponse(_message.Message):
    __slots__ = ("subject_id", "accepted_count", "rejected_count", "samples", "template", "duplicates", "total_net_speech_seconds", "reasons")
    SUBJECT_ID_FIELD_NUMBER: _ClassVar[int]
    ACCEPTED_COUNT_FIELD_NUMBER: _ClassVar[int]
    REJECTED_COUNT_FIELD_NUMBER: _ClassVar[int]
    SAMPLES_FIELD_NUMBER: _ClassVar[int]
    TEMPLATE_FIELD_NUMBER: _ClassVar[int]
    DUPLICATES_FIELD_NUMBER: _ClassVar[int]
    TOTAL_NET_SPEECH_SECONDS_FIELD_NUMBER: _ClassVar[int]
    REASONS_FIELD_NUMBER: _ClassVar[int]
    subject_id: str
    accepted_count: int
    rejected_count: int
    samples: _containers.RepeatedCompositeFieldContainer[VoiceSampleResult]
    template: _common_pb2.TemplateInfo
    duplicates: _containers.RepeatedCompositeFieldContainer[_common_pb2.DuplicateMatch]
    total_net_speech_seconds: float
    reasons: _containers.RepeatedCompositeFieldContainer[_common_pb2.Reason]
    def __init__(self, subject_id: _Optional[str] = ..., accepted_count: _Optional[int] = ..., rejected_count: _Optional[int] = ..., samples: _Optional[_Iterable[_Union[VoiceSampleResult, _Mapping]]] = ..., template: _Optional[_Union[_common_pb2.TemplateInfo, _Mapping]] = ..., duplicates: _Optional[_Iterable[_Union[_common_pb2.DuplicateMatch, _Mapping]]] = ..., total_net_speech_seconds: _Optional[float] = ..., reasons: _Optional[_Iterable[_Union[_common_pb2.Reason, _Mapping]]] = ...) -> None: ...

class VerifyVoiceRequest(_message.Message):
    __slots__ = ("subject_id", "clip", "tenant", "policy")
    SUBJECT_ID_FIELD_NUMBER: _ClassVar[int]
    CLIP_FIELD_NUMBER: _ClassVar[int]
    TENANT_FIELD_NUMBER: _ClassVar[int]
    POLICY_FIELD_NUMBER: _ClassVar[int]
    subject_id: str
    clip: Audio
    tenant: str
    policy: _common_pb2.Policy
    def __init__(self, subject_id: _Optional[str] = ..., clip: _Optional[_Union[Audio, _Mapping]] = ..., tenant: _Optional[str] = ..., policy: _Optional[_Union[_common_pb2.Policy, _Mapping]] = ...) -> None: ...

class VerifyVoiceResponse(_message.Message):
    __slots__ = ("subject_id", "match", "quality", "liveness", "decision", "reasons")
    SUBJECT_ID_FIELD_NUMBER: _ClassVar[int]
    MATCH_FIELD_NUMBER: _ClassVar[int]
    QUALITY_FIELD_NUMBER: _ClassVar[int]
    LIVENESS_FIELD_NUMBER: _ClassVar[int]
    DECISION_FIELD_NUMBER: _ClassVar[int]
    REASONS_FIELD_NUMBER: _ClassVar[int]
    subject_id: str
    match: _common_pb2.MatchScore
    quality: VoiceQuality
    liveness: _common_pb2.LivenessReport
    decision: _common_pb2.Decision
    reasons: _containers.RepeatedCompositeFieldContainer[_common_pb2.Reason]
    def __init__(self, subject_id: _Optional[str] = ..., match: _Optional[_Union[_common_pb2.MatchScore, _Mapping]] = ..., quality: _Optional[_Union[VoiceQuality, _Mapping]] = ..., liveness: _Optional[_Union[_common_pb2.LivenessReport, _Mapping]] = ..., decision: _Optional[_Union[_common_pb2.Decision, str]] = ..., reasons: _Optional[_Iterable[_Union[_common_pb2.Reason, _Mapping]]] = ...) -> None: ...

class IdentifyVoiceRequest(_message.Message):
    __slots__ = ("clip", "top_k", "min_confidence", "tenant", "policy")
    CLIP_FIELD_NUMBER: _ClassVar[int]
    TOP_K_FIELD_NUMBER: _ClassVar[int]
    MIN_CONFIDENCE_FIELD_NUMBER: _ClassVar[int]
    TENANT_FIELD_NUMBER: _ClassVar[int]
    POLICY_FIELD_NUMBER: _ClassVar[int]
    clip: Audio
    top_k: int
    min_confidence: float
    tenant: str
    policy: _common_pb2.Policy
    def __init__(self, clip: _Optional[_Union[Audio, _Mapping]] = ..., top_k: _Optional[int] = ..., min_confidence: _Optional[float] = ..., tenant: _Optional[str] = ..., policy: _Optional[_Union[_common_pb2.Policy, _Mapping]] = ...) -> None: ...

class IdentifyVoiceResponse(_message.Message):
    __slots__ = ("candidates", "quality", "liveness", "decision", "reasons", "model", "operating_point", "threshold", "expected_fpir")
    CANDIDATES_FIELD_NUMBER: _ClassVar[int]
    QUALITY_FIELD_NUMBER: _ClassVar[int]
    LIVENESS_FIELD_NUMBER: _ClassVar[int]
    DECISION_FIELD_NUMBER: _ClassVar[int]
    REASONS_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    OPERATING_POINT_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_FPIR_FIELD_NUMBER: _ClassVar[int]
    candidates: _containers.RepeatedCompositeFieldContainer[_common_pb2.Candidate]
    quality: VoiceQuality
    liveness: _common_pb2.LivenessReport
    decision: _common_pb2.Decision
    reasons: _containers.RepeatedCompositeFieldContainer[_common_pb2.Reason]
    model: str
    operating_point: str
    threshold: float
    expected_fpir: float
    def __init__(self, candidates: _Optional[_Iterable[_Union[_common_pb2.Candidate, _Mapping]]] = ..., quality: _Optional[_Union[VoiceQuality, _Mapping]] = ..., liveness: _Optional[_Union[_common_pb2.LivenessReport, _Mapping]] = ..., decision: _Optional[_Union[_common_pb2.Decision, str]] = ..., reasons: _Optional[_Iterable[_Union[_common_pb2.Reason, _Mapping]]] = ..., model: _Optional[str] = ..., operating_point: _Optional[str] = ..., threshold: _Optional[float] = ..., expected_fpir: _Optional[float] = ...) -> None: ...

class VoiceStreamConfig(_message.Message):
    __slots__ = ("subject_id", "tenant", "encoding", "sample_rate_hz", "channels", "channel", "policy", "interim_every_speech_seconds")
    SUBJECT_ID_FIELD_NUMBER: _ClassVar[int]
    TENANT_FIELD_NUMBER: _ClassVar[int]
    ENCODING_FIELD_NUMBER: _ClassVar[int]
    SAMPLE_RATE_HZ_FIELD_NUMBER: _ClassVar[int]
    CHANNELS_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    POLICY_FIELD_NUMBER: _ClassVar[int]
    INTERIM_EVERY_SPEECH_SECONDS_FIELD_NUMBER: _ClassVar[int]
    subject_id: str
    tenant: str
    encoding: AudioEncoding
    sample_rate_hz: int
    channels: int
    channel: int
    policy: _common_pb2.Policy
    interim_every_speech_seconds: float
    def __init__(self, subject_id: _Optional[str] = ..., tenant: _Optional[str] = ..., encoding: _Optional[_Union[AudioEncoding, str]] = ..., sample_rate_hz: _Optional[int] = ..., channels: _Optional[int] = ..., channel: _Optional[int] = ..., policy: _Optional[_Union[_common_pb2.Policy, _Mapping]] = ..., interim_every_speech_seconds: _Optional[float] = ...) -> None: ...

class VoiceStreamRequest(_message.Message):
    __slots__ = ("config", "audio")
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    AUDIO_FIELD_NUMBER: _ClassVar[int]
    config: VoiceStreamConfig
    audio: bytes
    def __init__(self, config: _Optional[_Union[VoiceStreamConfig, _Mapping]] = ..., audio: _Optional[bytes] = ...) -> None: ...

class VoiceStreamResponse(_message.Message):
    __slots__ = ("final", "call_seconds", "net_speech_seconds", "match", "liveness", "decision", "reasons")
    FINAL_FIELD_NUMBER: _ClassVar[int]
    CALL_SECONDS_FIELD_NUMBER: _ClassVar[int]
    NET_SPEECH_SECONDS_FIELD_NUMBER: _ClassVar[int]
    MATCH_FIELD_NUMBER: _ClassVar[int]
    LIVENESS_FIELD_NUMBER: _ClassVar[int]
    DECISION_FIELD_NUMBER: _ClassVar[int]
    REASONS_FIELD_NUMBER: _ClassVar[int]
    final: bool
    call_seconds: float
    net_speech_seconds: float
    match: _common_pb2.MatchScore
    liveness: _common_pb2.LivenessReport
    decision: _common_pb2.Decision
    reasons: _containers.RepeatedCompositeFieldContainer[_common_pb2.Reason]
    def __init__(self, final: _Optional[bool] = ..., call_seconds: _Optional[float] = ..., net_speech_seconds: _Optional[float] = ..., match: _Optional[_Union[_common_pb2.MatchScore, _Mapping]] = ..., liveness: _Optional[_Union[_common_pb2.LivenessReport, _Mapping]] = ..., decision: _Optional[_Union[_common_pb2.Decision, str]] = ..., reasons: _Optional[_Iterable[_Union[_common_pb2.Reason, _Mapping]]] = ...) -> None: ...
