"""LivenessService: decode, call the use case, encode."""

from __future__ import annotations

from datetime import UTC, datetime

import grpc

from bioverify.errors import InvalidInput
from bioverify.liveness.ports import LivenessAssessment
from bioverify.server import convert
from bioverify.usecases.liveness import LivenessChecks, refuse_challenge_without_frames
from bioverify.usecases.voice import VoiceVerification
from bioverify.v1 import common_pb2, liveness_pb2, liveness_pb2_grpc


class LivenessServicer(liveness_pb2_grpc.LivenessServiceServicer):  # type: ignore[misc]
    def __init__(self, checks: LivenessChecks, voices: VoiceVerification | None) -> None:
        self.checks = checks
        self.voices = voices

    def StartLivenessChallenge(
        self, request: liveness_pb2.StartLivenessChallengeRequest, context: grpc.ServicerContext
    ) -> liveness_pb2.LivenessChallenge:
        challenge = self.checks.start_challenge(request.tenant, request.subject_id)
        return liveness_pb2.LivenessChallenge(
            challenge_id=challenge.challenge_id,
            nonce=challenge.nonce,
            actions=[liveness_pb2.ChallengeAction.Value(a.value) for a in challenge.actions],
            expires_at=datetime.fromtimestamp(challenge.expires_at, UTC).isoformat(
                timespec="seconds"
            ),
        )

    def CheckLiveness(
        self, request: liveness_pb2.CheckLivenessRequest, context: grpc.ServicerContext
    ) -> liveness_pb2.CheckLivenessResponse:
        kind = request.WhichOneof("sample")
        assessment: LivenessAssessment
        if kind == "image":
            refuse_challenge_without_frames(request.challenge_id, request.nonce, "an image")
            assessment = self.checks.check_image(request.image)
        elif kind == "frames":
            assessment = self.checks.check_frames(
                convert.live_capture_from_proto(
                    request.frames, request.challenge_id, request.nonce, "frames"
                ),
                tenant=request.tenant,
            )
        elif kind == "clip":
            refuse_challenge_without_frames(request.challenge_id, request.nonce, "an audio clip")
            if self.voices is None:
                raise InvalidInput("this service has no voice pipeline")
            assessment = self.voices.check_clip(
                convert.audio_from_proto(request.clip, "clip"), request.tenant
            )
        else:
            raise InvalidInput("send an image, frames or an audio clip")
        return liveness_pb2.CheckLivenessResponse(
            liveness=convert.assessment_to_proto(assessment),
            decision=common_pb2.ACCEPT if assessment.live else common_pb2.SPOOF_SUSPECTED,
            reasons=[common_pb2.Reason(code=c, message=m) for c, m in assessment.reasons],
        )
