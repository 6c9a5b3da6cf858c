from bioverify.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class GetServiceInfoRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ModelFile(_message.Message):
    __slots__ = ("path", "sha256", "size_bytes")
    PATH_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    path: str
    sha256: str
    size_bytes: int
    def __init__(self, path: _Optional[str] = ..., sha256: _Optional[str] = ..., size_bytes: _Optional[int] = ...) -> None: ...

class OperatingPoint(_message.Message):
    __slots__ = ("name", "target_fmr", "threshold", "is_default")
    NAME_FIELD_NUMBER: _ClassVar[int]
    TARGET_FMR_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    IS_DEFAULT_FIELD_NUMBER: _ClassVar[int]
    name: str
    target_fmr: float
    threshold: float
    is_default: bool
    def __init__(self, name: _Optional[str] = ..., target_fmr: _Optional[float] = ..., threshold: _Optional[float] = ..., is_default: _Optional[bool] = ...) -> None: ...

class Calibration(_message.Message):
    __slots__ = ("method", "slope", "intercept", "fitted_on", "n_genuine", "n_impostor")
    METHOD_FIELD_NUMBER: _ClassVar[int]
    SLOPE_FIELD_NUMBER: _ClassVar[int]
    INTERCEPT_FIELD_NUMBER: _ClassVar[int]
    FITTED_ON_FIELD_NUMBER: _ClassVar[int]
    N_GENUINE_FIELD_NUMBER: _ClassVar[int]
    N_IMPOSTOR_FIELD_NUMBER: _ClassVar[int]
    method: str
    slope: float
    intercept: float
    fitted_on: str
    n_genuine: int
    n_impostor: int
    def __init__(self, method: _Optional[str] = ..., slope: _Optional[float] = ..., intercept: _Optional[float] = ..., fitted_on: _Optional[str] = ..., n_genuine: _Optional[int] = ..., n_impostor: _Optional[int] = ...) -> None: ...

class ModelInfo(_message.Message):
    __slots__ = ("pack", "modality", "role", "version", "licence", "description", "files", "operating_points", "calibration", "embedding_dim", "fitting_samples_sha256")
    PACK_FIELD_NUMBER: _ClassVar[int]
    MODALITY_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    LICENCE_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    FILES_FIELD_NUMBER: _ClassVar[int]
    OPERATING_POINTS_FIELD_NUMBER: _ClassVar[int]
    CALIBRATION_FIELD_NUMBER: _ClassVar[int]
    EMBEDDING_DIM_FIELD_NUMBER: _ClassVar[int]
    FITTING_SAMPLES_SHA256_FIELD_NUMBER: _ClassVar[int]
    pack: str
    modality: _common_pb2.Modality
    role: str
    version: str
    licence: str
    description: str
    files: _containers.RepeatedCompositeFieldContainer[ModelFile]
    operating_points: _containers.RepeatedCompositeFieldContainer[OperatingPoint]
    calibration: Calibration
    embedding_dim: int
    fitting_samples_sha256: str
    def __init__(self, pack: _Optional[str] = ..., modality: _Optional[_Union[_common_pb2.Modality, str]] = ..., role: _Optional[str] = ..., version: _Optional[str] = ..., licence: _Optional[str] = ..., description: _Optional[str] = ..., files: _Optional[_Iterable[_Union[ModelFile, _Mapping]]] = ..., operating_points: _Optional[_Iterable[_Union[OperatingPoint, _Mapping]]] = ..., calibration: _Optional[_Union[Calibration, _Mapping]] = ..., embedding_dim: _Optional[int] = ..., fitting_samples_sha256: _Optional[str] = ...) -> None: ...

class Limits(_message.Message):
    __slots__ = ("max_message_bytes", "max_image_bytes", "max_image_pixels", "max_images_per_enrollment", "max_audio_bytes", "max_audio_seconds", "max_call_seconds")
    MAX_MESSAGE_BYTES_FIELD_NUMBER: _ClassVar[int]
    MAX_IMAGE_BYTES_FIELD_NUMBER: _ClassVar[int]
    MAX_IMAGE_PIXELS_FIELD_NUMBER: _ClassVar[int]
    MAX_IMAGES_PER_ENROLLMENT_FIELD_NUMBER: _ClassVar[int]
    MAX_AUDIO_BYTES_FIELD_NUMBER: _ClassVar[int]
    MAX_AUDIO_SECONDS_FIELD_NUMBER: _ClassVar[int]
    MAX_CALL_SECONDS_FIELD_NUMBER: _ClassVar[int]
    max_message_bytes: int
    max_image_bytes: int
    max_image_pixels: int
    max_images_per_enrollment: int
    max_audio_bytes: int
    max_audio_seconds: float
    max_call_seconds: float
    def __init__(self, max_message_bytes: _Optional[int] = ..., max_image_bytes: _Optional[int] = ..., max_image_pixels: _Optional[int] = ..., max_images_per_enrollment: _Optional[int] = ..., max_audio_bytes: _Optional[int] = ..., max_audio_seconds: _Optional[float] = ..., max_call_seconds: _Optional[float] = ...) -> None: ...

class ServiceInfo(_message.Message):
    __slots__ = ("service_version", "api_version", "models", "limits", "store", "runtime_versions")
    class RuntimeVersionsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    SERVICE_VERSION_FIELD_NUMBER: _ClassVar[int]
    API_VERSION_FIELD_NUMBER: _ClassVar[int]
    MODELS_FIELD_NUMBER: _ClassVar[int]
    LIMITS_FIELD_NUMBER: _ClassVar[int]
    STORE_FIELD_NUMBER: _ClassVar[int]
    RUNTIME_VERSIONS_FIELD_NUMBER: _ClassVar[int]
    service_version: str
    api_version: str
    models: _containers.RepeatedCompositeFieldContainer[ModelInfo]
    limits: Limits
    store: str
    runtime_versions: _containers.ScalarMap[str, str]
    def __init__(self, service_version: _Optional[str] = ..., api_version: _Optional[str] = ..., models: _Optional[_Iterable[_Union[ModelInfo, _Mapping]]] = ..., limits: _Optional[_Union[Limits, _Mapping]] = ..., store: _Optional[str] = ..., runtime_versions: _Optional[_Mapping[str, str]] = ...) -> None: ...
