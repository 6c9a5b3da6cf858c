"""FaceService: decode the request, call the use case, encode the reply."""

from __future__ import annotations

import grpc

from bioverify.server import convert
from bioverify.usecases.face import FaceVerification
from bioverify.v1 import face_pb2, face_pb2_grpc


class FaceServicer(face_pb2_grpc.FaceServiceServicer):  # type: ignore[misc]
    def __init__(self, faces: FaceVerification) -> None:
        self.faces = faces

    def CompareFaces(
        self, request: face_pb2.CompareFacesRequest, context: grpc.ServicerContext
    ) -> face_pb2.CompareFacesResponse:
        out = self.faces.compare(
            request.image_a, request.image_b, convert.policy_from_proto(request.policy)
        )
        return face_pb2.CompareFacesResponse(
            match=convert.match_to_proto(out.match, out.model),
            face_a=convert.finding_to_proto(out.face_a),
            face_b=convert.finding_to_proto(out.face_b),
            liveness_a=convert.liveness_to_proto(out.liveness_a),
            liveness_b=convert.liveness_to_proto(out.liveness_b),
            decision=convert.decision_for(out.match, out.retry, out.liveness_a, out.liveness_b),
            reasons=convert.reasons_to_proto(out.retry),
        )

    def EnrollFace(
        self, request: face_pb2.EnrollFaceRequest, context: grpc.ServicerContext
    ) -> face_pb2.EnrollFaceResponse:
        out = self.faces.enroll(
            tenant=request.tenant,
            subject_id=request.subject_id,
            images=list(request.images),
            metadata=dict(request.metadata),
            replace=request.replace,
            policy=convert.policy_from_proto(request.policy),
            dry_run=request.dry_run,
            refuse_duplicates=convert.refuse_duplicates_from_proto(request),
            capture=convert.optional_live_capture(request),
        )
        reply = face_pb2.EnrollFaceResponse(
            subject_id=out.subject_id,
            accepted_count=sum(1 for s in out.samples if s.accepted),
            rejected_count=sum(1 for s in out.samples if not s.accepted),
            samples=[
                face_pb2.FaceSampleResult(
                    index=s.index,
                    accepted=s.accepted,
                    reasons=convert.reasons_to_proto(s.reasons),
                    analysis=convert.sample_analysis_to_proto(s),
                    liveness=convert.liveness_to_proto(s.liveness),
                )
                for s in out.samples
            ],
            duplicates=convert.duplicates_to_proto(out.duplicates),
            reasons=convert.reasons_to_proto(out.refusal),
            liveness=convert.liveness_to_proto(out.liveness),
        )
        if out.template is not None:
            reply.template.CopyFrom(convert.template_to_proto(out.template))
        return reply

    def VerifyFace(
        self, request: face_pb2.VerifyFaceRequest, context: grpc.ServicerContext
    ) -> face_pb2.VerifyFaceResponse:
        out = self.faces.verify(
            tenant=request.tenant,
            subject_id=request.subject_id,
            image=request.image,
            policy=convert.policy_from_proto(request.policy),
            capture=convert.optional_live_capture(request),
        )
        return face_pb2.VerifyFaceResponse(
            subject_id=out.subject_id,
            match=convert.match_to_proto(out.match, out.model),
            analysis=convert.finding_to_proto(out.finding),
            liveness=convert.liveness_to_proto(out.liveness),
            decision=convert.decision_for(out.match, out.retry, out.liveness),
            reasons=convert.reasons_to_proto(out.retry),
        )

    def IdentifyFace(
        self, request: face_pb2.IdentifyFaceRequest, context: grpc.ServicerContext
    ) -> face_pb2.IdentifyFaceResponse:
        out = self.faces.identify(
            tenant=request.tenant,
            image=request.image,
            top_k=request.top_k,
            min_confidence=request.min_confidence,
            policy=convert.policy_from_proto(request.policy),
            capture=convert.optional_live_capture(request),
        )
        return face_pb2.IdentifyFaceResponse(
            candidates=convert.candidates_to_proto(out.result),
            analysis=convert.finding_to_proto(out.finding),
            liveness=convert.liveness_to_proto(out.liveness),
            decision=convert.identify_decision(out.result, out.retry, out.liveness),
            reasons=convert.reasons_to_proto(out.retry),
            model=out.model,
            operating_point=out.result.operating_point,
            threshold=out.result.threshold,
            expected_fpir=out.result.expected_fpir,
        )
