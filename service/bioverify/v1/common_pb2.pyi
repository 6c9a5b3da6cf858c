from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Decision(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DECISION_UNSPECIFIED: _ClassVar[Decision]
    ACCEPT: _ClassVar[Decision]
    REJECT: _ClassVar[Decision]
    SPOOF_SUSPECTED: _ClassVar[Decision]
    RETRY: _ClassVar[Decision]

class Modality(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    MODALITY_UNSPECIFIED: _ClassVar[Modality]
    FACE: _ClassVar[Modality]
    VOICE: _ClassVar[Modality]

class DuplicateAction(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DUPLICATE_ACTION_UNSPECIFIED: _ClassVar[DuplicateAction]
    DUPLICATE_REPORT: _ClassVar[DuplicateAction]
    DUPLICATE_REFUSE: _ClassVar[DuplicateAction]
DECISION_UNSPECIFIED: Decision
ACCEPT: Decision
REJECT: Decision
SPOOF_SUSPECTED: Decision
RETRY: Decision
MODALITY_UNSPECIFIED: Modality
FACE: Modality
VOICE: Modality
DUPLICATE_ACTION_UNSPECIFIED: DuplicateAction
DUPLICATE_REPORT: DuplicateAction
DUPLICATE_REFUSE: DuplicateAction

class Reason(_message.Message):
    __slots__ = ("code", "message")
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    code: str
    message: str
    def __init__(self, code: _Optional[str] = ..., message: _Optional[str] = ...) -> None: ...

class MatchScore(_message.Message):
    __slots__ = ("confidence", "similarity", "threshold", "operating_point", "target_fmr", "decision", "model")
    CONFIDENCE_FIELD_NUMBER: _ClassVar[int]
    SIMILARITY_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    OPERATING_POINT_FIELD_NUMBER: _ClassVar[int]
    TARGET_FMR_FIELD_NUMBER: _ClassVar[int]
    DECISION_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    confidence: float
    similarity: float
    threshold: float
    operating_point: str
    target_fmr: float
    decision: Decision
    model: str
    def __init__(self, confidence: _Optional[float] = ..., similarity: _Optional[float] = ..., threshold: _Optional[float] = ..., operating_point: _Optional[str] = ..., target_fmr: _Optional[float] = ..., decision: _Optional[_Union[Decision, str]] = ..., model: _Optional[str] = ...) -> None: ...

class Policy(_message.Message):
    __slots__ = ("require_liveness", "operating_point", "observe_only")
    REQUIRE_LIVENESS_FIELD_NUMBER: _ClassVar[int]
    OPERATING_POINT_FIELD_NUMBER: _ClassVar[int]
    OBSERVE_ONLY_FIELD_NUMBER: _ClassVar[int]
    require_liveness: bool
    operating_point: str
    observe_only: bool
    def __init__(self, require_liveness: _Optional[bool] = ..., operating_point: _Optional[str] = ..., observe_only: _Optional[bool] = ...) -> None: ...

class LivenessCheck(_message.Message):
    __slots__ = ("name", "score", "weight", "passed", "detail")
    NAME_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_FIELD_NUMBER: _ClassVar[int]
    PASSED_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    name: str
    score: float
    weight: float
    passed: bool
    detail: str
    def __init__(self, name: _Optional[str] = ..., score: _Optional[float] = ..., weight: _Optional[float] = ..., passed: _Optional[bool] = ..., detail: _Optional[str] = ...) -> None: ...

class LivenessReport(_message.Message):
    __slots__ = ("checked", "live", "score", "threshold", "checks", "reasons", "observe_only")
    CHECKED_FIELD_NUMBER: _ClassVar[int]
    LIVE_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    CHECKS_FIELD_NUMBER: _ClassVar[int]
    REASONS_FIELD_NUMBER: _ClassVar[int]
    OBSERVE_ONLY_FIELD_NUMBER: _ClassVar[int]
    checked: bool
    live: bool
    score: float
    threshold: float
    checks: _containers.RepeatedCompositeFieldContainer[LivenessCheck]
    reasons: _containers.RepeatedCompositeFieldContainer[Reason]
    observe_only: bool
    def __init__(self, checked: _Optional[bool] = ..., live: _Optional[bool] = ..., score: _Optional[float] = ..., threshold: _Optional[float] = ..., checks: _Optional[_Iterable[_Union[LivenessCheck, _Mapping]]] = ..., reasons: _Optional[_Iterable[_Union[Reason, _Mapping]]] = ..., observe_only: _Optional[bool] = ...) -> None: ...

class DuplicateMatch(_message.Message):
    __slots__ = ("subject_id", "confidence", "similarity")
    SUBJECT_ID_FIELD_NUMBER: _ClassVar[int]
    CONFIDENCE_FIELD_NUMBER: _ClassVar[int]
    SIMILARITY_FIELD_NUMBER: _ClassVar[int]
    subject_id: str
    confidence: float
    similarity: float
    def __init__(self, subject_id: _Optional[str] = ..., confidence: _Optional[float] = ..., similarity: _Optional[float] = ...) -> None: ...

class Candidate(_message.Message):
    __slots__ = ("subject_id", "confidence", "similarity", "rank")
    SUBJECT_ID_FIELD_NUMBER: _ClassVar[int]
    CONFIDENCE_FIELD_NUMBER: _ClassVar[int]
    SIMILARITY_FIELD_NUMBER: _ClassVar[int]
    RANK_FIELD_NUMBER: _ClassVar[int]
    subject_id: str
    confidence: float
    similarity: float
    rank: int
    def __init__(self, subject_id: _Optional[str] = ..., confidence: _Optional[float] = ..., similarity: _Optional[float] = ..., rank: _Optional[int] = ...) -> None: ...

class TemplateInfo(_message.Message):
    __slots__ = ("modality", "model", "sample_count", "created_at", "updated_at")
    MODALITY_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    SAMPLE_COUNT_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    modality: Modality
    model: str
    sample_count: int
    created_at: str
    updated_at: str
    def __init__(self, modality: _Optional[_Union[Modality, str]] = ..., model: _Optional[str] = ..., sample_count: _Optional[int] = ..., created_at: _Optional[str] = ..., updated_at: _Optional[str] = ...) -> None: ...
