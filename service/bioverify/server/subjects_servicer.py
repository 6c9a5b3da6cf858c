"""SubjectService: decode, call the use case, encode."""

from __future__ import annotations

import grpc

from bioverify.server import convert
from bioverify.usecases.subjects import SubjectAdministration
from bioverify.v1 import subjects_pb2, subjects_pb2_grpc


class SubjectServicer(subjects_pb2_grpc.SubjectServiceServicer):  # type: ignore[misc]
    def __init__(self, subjects: SubjectAdministration) -> None:
        self.subjects = subjects

    def GetSubject(
        self, request: subjects_pb2.GetSubjectRequest, context: grpc.ServicerContext
    ) -> subjects_pb2.Subject:
        return convert.subject_to_proto(self.subjects.get(request.tenant, request.subject_id))

    def ListSubjects(
        self, request: subjects_pb2.ListSubjectsRequest, context: grpc.ServicerContext
    ) -> subjects_pb2.ListSubjectsResponse:
        page = self.subjects.list(
            request.tenant,
            request.page_size,
            request.page_token,
            convert.modality_from_proto(request),
        )
        return subjects_pb2.ListSubjectsResponse(
            subjects=[convert.subject_to_proto(s) for s in page.subjects],
            next_page_token=page.next_page_token,
        )

    def DeleteSubject(
        self, request: subjects_pb2.DeleteSubjectRequest, context: grpc.ServicerContext
    ) -> subjects_pb2.DeleteSubjectResponse:
        subject_id, deleted = self.subjects.delete(request.tenant, request.subject_id)
        return subjects_pb2.DeleteSubjectResponse(subject_id=subject_id, templates_deleted=deleted)
