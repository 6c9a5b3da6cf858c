from bioverify.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Subject(_message.Message):
    __slots__ = ("subject_id", "tenant", "metadata", "templates", "created_at", "updated_at", "metadata_unreadable")
    class MetadataEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    SUBJECT_ID_FIELD_NUMBER: _ClassVar[int]
    TENANT_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    TEMPLATES_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    METADATA_UNREADABLE_FIELD_NUMBER: _ClassVar[int]
    subject_id: str
    tenant: str
    metadata: _containers.ScalarMap[str, str]
    templates: _containers.RepeatedCompositeFieldContainer[_common_pb2.TemplateInfo]
    created_at: str
    updated_at: str
    metadata_unreadable: str
    def __init__(self, subject_id: _Optional[str] = ..., tenant: _Optional[str] = ..., metadata: _Optional[_Mapping[str, str]] = ..., templates: _Optional[_Iterable[_Union[_common_pb2.TemplateInfo, _Mapping]]] = ..., created_at: _Optional[str] = ..., updated_at: _Optional[str] = ..., metadata_unreadable: _Optional[str] = ...) -> None: ...

class GetSubjectRequest(_message.Message):
    __slots__ = ("subject_id", "tenant")
    SUBJECT_ID_FIELD_NUMBER: _ClassVar[int]
    TENANT_FIELD_NUMBER: _ClassVar[int]
    subject_id: str
    tenant: str
    def __init__(self, subject_id: _Optional[str] = ..., tenant: _Optional[str] = ...) -> None: ...

class ListSubjectsRequest(_message.Message):
    __slots__ = ("tenant", "page_size", "page_token", "modality")
    TENANT_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    MODALITY_FIELD_NUMBER: _ClassVar[int]
    tenant: str
    page_size: int
    page_token: str
    modality: _common_pb2.Modality
    def __init__(self, tenant: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., modality: _Optional[_Union[_common_pb2.Modality, str]] = ...) -> None: ...

class ListSubjectsResponse(_message.Message):
    __slots__ = ("subjects", "next_page_token")
    SUBJECTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    subjects: _containers.RepeatedCompositeFieldContainer[Subject]
    next_page_token: str
    def __init__(self, subjects: _Optional[_Iterable[_Union[Subject, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class DeleteSubjectRequest(_message.Message):
    __slots__ = ("subject_id", "tenant")
    SUBJECT_ID_FIELD_NUMBER: _ClassVar[int]
    TENANT_FIELD_NUMBER: _ClassVar[int]
    subject_id: str
    tenant: str
    def __init__(self, subject_id: _Optional[str] = ..., tenant: _Optional[str] = ...) -> None: ...

class DeleteSubjectResponse(_message.Message):
    __slots__ = ("subject_id", "templates_deleted")
    SUBJECT_ID_FIELD_NUMBER: _ClassVar[int]
    TEMPLATES_DELETED_FIELD_NUMBER: _ClassVar[int]
    subject_id: str
    templates_deleted: int
    def __init__(self, subject_id: _Optional[str] = ..., templates_deleted: _Optional[int] = ...) -> None: ...
