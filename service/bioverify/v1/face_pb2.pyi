from bioverify.v1 import common_pb2 as _common_pb2
from bioverify.v1 import liveness_pb2 as _liveness_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Point(_message.Message):
    __slots__ = ("x", "y")
    X_FIELD_NUMBER: _ClassVar[int]
    Y_FIELD_NUMBER: _ClassVar[int]
    x: float
    y: float
    def __init__(self, x: _Optional[float] = ..., y: _Optional[float] = ...) -> None: ...

class FaceBox(_message.Message):
    __slots__ = ("x", "y", "width", "height", "detection_score", "landmarks")
    X_FIELD_NUMBER: _ClassVar[int]
    Y_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    DETECTION_SCORE_FIELD_NUMBER: _ClassVar[int]
    LANDMARKS_FIELD_NUMBER: _ClassVar[int]
    x: float
    y: float
    width: float
    height: float
    detection_score: float
    landmarks: _containers.RepeatedCompositeFieldContainer[Point]
    def __init__(self, x: _Optional[float] = ..., y: _Optional[float] = ..., width: _Optional[float] = ..., height: _Optional[float] = ..., detection_score: _Optional[float] = ..., landmarks: _Optional[_Iterable[_Union[Point, _Mapping]]] = ...) -> None: ...

class FaceQuality(_message.Message):
    __slots__ = ("acceptable", "inter_eye_distance_px", "face_height_px", "sharpness", "brightness", "dark_fraction", "bright_fraction", "yaw_ratio", "pitch_ratio", "roll_degrees", "issues")
    ACCEPTABLE_FIELD_NUMBER: _ClassVar[int]
    INTER_EYE_DISTANCE_PX_FIELD_NUMBER: _ClassVar[int]
    FACE_HEIGHT_PX_FIELD_NUMBER: _ClassVar[int]
    SHARPNESS_FIELD_NUMBER: _ClassVar[int]
    BRIGHTNESS_FIELD_NUMBER: _ClassVar[int]
    DARK_FRACTION_FIELD_NUMBER: _ClassVar[int]
    BRIGHT_FRACTION_FIELD_NUMBER: _ClassVar[int]
    YAW_RATIO_FIELD_NUMBER: _ClassVar[int]
    PITCH_RATIO_FIELD_NUMBER: _ClassVar[int]
    ROLL_DEGREES_FIELD_NUMBER: _ClassVar[int]
    ISSUES_FIELD_NUMBER: _ClassVar[int]
    acceptable: bool
    inter_eye_distance_px: float
    face_height_px: float
    sharpness: float
    brightness: float
    dark_fraction: float
    bright_fraction: float
    yaw_ratio: float
    pitch_ratio: float
    roll_degrees: float
    issues: _containers.RepeatedCompositeFieldContainer[_common_pb2.Reason]
    def __init__(self, acceptable: _Optional[bool] = ..., inter_eye_distance_px: _Optional[float] = ..., face_height_px: _Optional[float] = ..., sharpness: _Optional[float] = ..., brightness: _Optional[float] = ..., dark_fraction: _Optional[float] = ..., bright_fraction: _Optional[float] = ..., yaw_ratio: _Optional[float] = ..., pitch_ratio: _Optional[float] = ..., roll_degrees: _Optional[float] = ..., issues: _Optional[_Iterable[_Union[_common_pb2.Reason, _Mapping]]] = ...) -> None: ...

class FaceAnalysis(_message.Message):
    __slots__ = ("face", "quality", "faces_detected", "image_width", "image_height")
    FACE_FIELD_NUMBER: _ClassVar[int]
    QUALITY_FIELD_NUMBER: _ClassVar[int]
    FACES_DETECTED_FIELD_NUMBER: _ClassVar[int]
    IMAGE_WIDTH_FIELD_NUMBER: _ClassVar[int]
    IMAGE_HEIGHT_FIELD_NUMBER: _ClassVar[int]
    face: FaceBox
    quality: FaceQuality
    faces_detected: int
    image_width: int
    image_height: int
    def __init__(self, face: _Optional[_Union[FaceBox, _Mapping]] = ..., quality: _Optional[_Union[FaceQuality, _Mapping]] = ..., faces_detected: _Optional[int] = ..., image_width: _Optional[int] = ..., image_height: _Optional[int] = ...) -> None: ...

class CompareFacesRequest(_message.Message):
    __slots__ = ("image_a", "image_b", "policy")
    IMAGE_A_FIELD_NUMBER: _ClassVar[int]
    IMAGE_B_FIELD_NUMBER: _ClassVar[int]
    POLICY_FIELD_NUMBER: _ClassVar[int]
    image_a: bytes
    image_b: bytes
    policy: _common_pb2.Policy
    def __init__(self, image_a: _Optional[bytes] = ..., image_b: _Optional[bytes] = ..., policy: _Optional[_Union[_common_pb2.Policy, _Mapping]] = ...) -> None: ...

class CompareFacesResponse(_message.Message):
    __slots__ = ("match", "face_a", "face_b", "liveness_a", "liveness_b", "decision", "reasons")
    MATCH_FIELD_NUMBER: _ClassVar[int]
    FACE_A_FIELD_NUMBER: _ClassVar[int]
    FACE_B_FIELD_NUMBER: _ClassVar[int]
    LIVENESS_A_FIELD_NUMBER: _ClassVar[int]
    LIVENESS_B_FIELD_NUMBER: _ClassVar[int]
    DECISION_FIELD_NUMBER: _ClassVar[int]
    REASONS_FIELD_NUMBER: _ClassVar[int]
    match: _common_pb2.MatchScore
    face_a: FaceAnalysis
    face_b: FaceAnalysis
    liveness_a: _common_pb2.LivenessReport
    liveness_b: _common_pb2.LivenessReport
    decision: _common_pb2.Decision
    reasons: _containers.RepeatedCompositeFieldContainer[_common_pb2.Reason]
    def __init__(self, match: _Optional[_Union[_common_pb2.MatchScore, _Mapping]] = ..., face_a: _Optional[_Union[FaceAnalysis, _Mapping]] = ..., face_b: _Optional[_Union[FaceAnalysis, _Mapping]] = ..., liveness_a: _Optional[_Union[_common_pb2.LivenessReport, _Mapping]] = ..., liveness_b: _Optional[_Union[_common_pb2.LivenessReport, _Mapping]] = ..., decision: _Optional[_Union[_common_pb2.Decision, str]] = ..., reasons: _Optional[_Iterable[_Union[_common_pb2.Reason, _Mapping]]] = ...) -> None: ...

class EnrollFaceRequest(_message.Message):
    __slots__ = ("subject_id", "images", "metadata", "tenant", "replace", "policy", "duplicate_action", "dry_run", "live_capture")
    class MetadataEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    SUBJECT_ID_FIELD_NUMBER: _ClassVar[int]
    IMAGES_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    TENANT_FIELD_NUMBER: _ClassVar[int]
    REPLACE_FIELD_NUMBER: _ClassVar[int]
    POLICY_FIELD_NUMBER: _ClassVar[int]
    DUPLICATE_ACTION_FIELD_NUMBER: _ClassVar[int]
    DRY_RUN_FIELD_NUMBER: _ClassVar[int]
    LIVE_CAPTURE_FIELD_NUMBER: _ClassVar[int]
    subject_id: str
    images: _containers.RepeatedScalarFieldContainer[bytes]
    metadata: _containers.ScalarMap[str, str]
    tenant: str
    replace: bool
    policy: _common_pb2.Policy
    duplicate_action: _common_pb2.DuplicateAction
    dry_run: bool
    live_capture: _liveness_pb2.LiveCapture
    def __init__(self, subject_id: _Optional[str] = ..., images: _Optional[_Iterable[bytes]] = ..., metadata: _Optional[_Mapping[str, str]] = ..., tenant: _Optional[str] = ..., replace: _Optional[bool] = ..., policy: _Optional[_Union[_common_pb2.Policy, _Mapping]] = ..., duplicate_action: _Optional[_Union[_common_pb2.DuplicateAction, str]] = ..., dry_run: _Optional[bool] = ..., live_capture: _Optional[_Union[_liveness_pb2.LiveCapture, _Mapping]] = ...) -> None: ...

class FaceSampleResult(_message.Message):
    __slots__ = ("index", "accepted", "reasons", "analysis", "liveness")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    ACCEPTED_FIELD_NUMBER: _ClassVar[int]
    REASONS_FIELD_NUMBER: _ClassVar[int]
    ANALYSIS_FIELD_NUMBER: _ClassVar[int]
    LIVENESS_FIELD_NUMBER: _ClassVar[int]
    index: int
    accepted: bool
    reasons: _containers.RepeatedCompositeFieldContainer[_common_pb2.Reason]
    analysis: FaceAnalysis
    liveness: _common_pb2.LivenessReport
    def __init__(self, index: _Optional[int] = ..., accepted: _Optional[bool] = ..., reasons: _Optional[_Iterable[_Union[_common_pb2.Reason, _Mapping]]] = ..., analysis: _Optional[_Union[FaceAnalysis, _Mapping]] = ..., liveness: _Optional[_Union[_common_pb2.LivenessReport, _Mapping]] = ...) -> None: ...

class EnrollFaceResponse(_message.Message):
    __slots__ = ("subject_id", "accepted_count", "rejected_count", "samples", "template", "duplicates", "reasons", "liveness")
    SUBJECT_ID_FIELD_NUMBER: _ClassVar[int]
    ACCEPTED_COUNT_FIELD_NUMBER: _ClassVar[int]
    REJECTED_COUNT_FIELD_NUMBER: _ClassVar[int]
    SAMPLES_FIELD_NUMBER: _ClassVar[int]
    TEMPLATE_FIELD_NUMBER: _ClassVar[int]
    DUPLICATES_FIELD_NUMBER: _ClassVar[int]
    REASONS_FIELD_NUMBER: _ClassVar[int]
    LIVENESS_FIELD_NUMBER: _ClassVar[int]
    subject_id: str
    accepted_count: int
    rejected_count: int
    samples: _containers.RepeatedCompositeFieldContainer[FaceSampleResult]
    template: _common_pb2.TemplateInfo
    duplicates: _containers.RepeatedCompositeFieldContainer[_common_pb2.DuplicateMatch]
    reasons: _containers.RepeatedCompositeFieldContainer[_common_pb2.Reason]
    liveness: _common_pb2.LivenessReport
    def __init__(self, subject_id: _Optional[str] = ..., accepted_count: _Optional[int] = ..., rejected_count: _Optional[int] = ..., samples: _Optional[_Iterable[_Union[FaceSampleResult, _Mapping]]] = ..., template: _Optional[_Union[_common_pb2.TemplateInfo, _Mapping]] = ..., duplicates: _Optional[_Iterable[_Union[_common_pb2.DuplicateMatch, _Mapping]]] = ..., reasons: _Optional[_Iterable[_Union[_common_pb2.Reason, _Mapping]]] = ..., liveness: _Optional[_Union[_common_pb2.LivenessReport, _Mapping]] = ...) -> None: ...

class VerifyFaceRequest(_message.Message):
    __slots__ = ("subject_id", "image", "tenant", "policy", "live_capture")
    SUBJECT_ID_FIELD_NUMBER: _ClassVar[int]
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    TENANT_FIELD_NUMBER: _ClassVar[int]
    POLICY_FIELD_NUMBER: _ClassVar[int]
    LIVE_CAPTURE_FIELD_NUMBER: _ClassVar[int]
    subject_id: str
    image: bytes
    tenant: str
    policy: _common_pb2.Policy
    live_capture: _liveness_pb2.LiveCapture
    def __init__(self, subject_id: _Optional[str] = ..., image: _Optional[bytes] = ..., tenant: _Optional[str] = ..., policy: _Optional[_Union[_common_pb2.Policy, _Mapping]] = ..., live_capture: _Optional[_Union[_liveness_pb2.LiveCapture, _Mapping]] = ...) -> None: ...

class VerifyFaceResponse(_message.Message):
    __slots__ = ("subject_id", "match", "analysis", "liveness", "decision", "reasons")
    SUBJECT_ID_FIELD_NUMBER: _ClassVar[int]
    MATCH_FIELD_NUMBER: _ClassVar[int]
    ANALYSIS_FIELD_NUMBER: _ClassVar[int]
    LIVENESS_FIELD_NUMBER: _ClassVar[int]
    DECISION_FIELD_NUMBER: _ClassVar[int]
    REASONS_FIELD_NUMBER: _ClassVar[int]
    subject_id: str
    match: _common_pb2.MatchScore
    analysis: FaceAnalysis
    liveness: _common_pb2.LivenessReport
    decision: _common_pb2.Decision
    reasons: _containers.RepeatedCompositeFieldContainer[_common_pb2.Reason]
    def __init__(self, subject_id: _Optional[str] = ..., match: _Optional[_Union[_common_pb2.MatchScore, _Mapping]] = ..., analysis: _Optional[_Union[FaceAnalysis, _Mapping]] = ..., liveness: _Optional[_Union[_common_pb2.LivenessReport, _Mapping]] = ..., decision: _Optional[_Union[_common_pb2.Decision, str]] = ..., reasons: _Optional[_Iterable[_Union[_common_pb2.Reason, _Mapping]]] = ...) -> None: ...

class IdentifyFaceRequest(_message.Message):
    __slots__ = ("image", "top_k", "min_confidence", "tenant", "policy", "live_capture")
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    TOP_K_FIELD_NUMBER: _ClassVar[int]
    MIN_CONFIDENCE_FIELD_NUMBER: _ClassVar[int]
    TENANT_FIELD_NUMBER: _ClassVar[int]
    POLICY_FIELD_NUMBER: _ClassVar[int]
    LIVE_CAPTURE_FIELD_NUMBER: _ClassVar[int]
    image: bytes
    top_k: int
    min_confidence: float
    tenant: str
    policy: _common_pb2.Policy
    live_capture: _liveness_pb2.LiveCapture
    def __init__(self, image: _Optional[bytes] = ..., top_k: _Optional[int] = ..., min_confidence: _Optional[float] = ..., tenant: _Optional[str] = ..., policy: _Optional[_Union[_common_pb2.Policy, _Mapping]] = ..., live_capture: _Optional[_Union[_liveness_pb2.LiveCapture, _Mapping]] = ...) -> None: ...

class IdentifyFaceResponse(_message.Message):
    __slots__ = ("candidates", "analysis", "liveness", "decision", "reasons", "model", "operating_point", "threshold", "expected_fpir")
    CANDIDATES_FIELD_NUMBER: _ClassVar[int]
    ANALYSIS_FIELD_NUMBER: _ClassVar[int]
    LIVENESS_FIELD_NUMBER: _ClassVar[int]
    DECISION_FIELD_NUMBER: _ClassVar[int]
    REASONS_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    OPERATING_POINT_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_FPIR_FIELD_NUMBER: _ClassVar[int]
    candidates: _containers.RepeatedCompositeFieldContainer[_common_pb2.Candidate]
    analysis: FaceAnalysis
    liveness: _common_pb2.LivenessReport
    decision: _common_pb2.Decision
    reasons: _containers.RepeatedCompositeFieldContainer[_common_pb2.Reason]
    model: str
    operating_point: str
    threshold: float
    expected_fpir: float
    def __init__(self, candidates: _Optional[_Iterable[_Union[_common_pb2.Candidate, _Mapping]]] = ..., analysis: _Optional[_Union[FaceAnalysis, _Mapping]] = ..., liveness: _Optional[_Union[_common_pb2.LivenessReport, _Mapping]] = ..., decision: _Optional[_Union[_common_pb2.Decision, str]] = ..., reasons: _Optional[_Iterable[_Union[_common_pb2.Reason, _Mapping]]] = ..., model: _Optional[str] = ..., operating_point: _Optional[str] = ..., threshold: _Optional[float] = ..., expected_fpir: _Optional[float] = ...) -> None: ...
