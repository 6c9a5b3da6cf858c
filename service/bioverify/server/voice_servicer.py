"""VoiceService: decode the request, call the use case, encode the reply."""

from __future__ import annotations

from collections.abc import Iterator

import grpc

from bioverify.errors import StreamProtocolError
from bioverify.server import convert
from bioverify.server.live_calls import LiveCalls
from bioverify.usecases.voice import StreamUpdate, VoiceVerification
from bioverify.v1 import voice_pb2, voice_pb2_grpc


class VoiceServicer(voice_pb2_grpc.VoiceServiceServicer):  # type: ignore[misc]
    def __init__(self, voices: VoiceVerification, live_calls: LiveCalls) -> None:
        self.voices = voices
        self.live_calls = live_calls

    def CompareVoices(
        self, request: voice_pb2.CompareVoicesRequest, context: grpc.ServicerContext
    ) -> voice_pb2.CompareVoicesResponse:
        out = self.voices.compare(
            convert.audio_from_proto(request.clip_a, "clip_a"),
            convert.audio_from_proto(request.clip_b, "clip_b"),
            convert.policy_from_proto(request.policy),
        )
        return voice_pb2.CompareVoicesResponse(
            match=convert.match_to_proto(out.match, out.model),
            quality_a=convert.clip_report_to_proto(out.clip_a),
            quality_b=convert.clip_report_to_proto(out.clip_b),
            liveness_a=convert.liveness_to_proto(out.liveness_a),
            liveness_b=convert.liveness_to_proto(out.liveness_b),
            decision=convert.decision_for(out.match, out.retry, out.liveness_a, out.liveness_b),
            reasons=convert.reasons_to_proto(out.retry),
        )

    def EnrollVoice(
        self, request: voice_pb2.EnrollVoiceRequest, context: grpc.ServicerContext
    ) -> voice_pb2.EnrollVoiceResponse:
        out = self.voices.enroll(
            tenant=request.tenant,
            subject_id=request.subject_id,
            clips=[convert.audio_from_proto(c, f"clips[{i}]") for i, c in enumerate(request.clips)],
            metadata=dict(request.metadata),
            replace=request.replace,
            policy=convert.policy_from_proto(request.policy),
            dry_run=request.dry_run,
            refuse_duplicates=convert.refuse_duplicates_from_proto(request),
        )
        reply = voice_pb2.EnrollVoiceResponse(
            subject_id=out.subject_id,
            accepted_count=sum(1 for s in out.samples if s.accepted),
            rejected_count=sum(1 for s in out.samples if not s.accepted),
            samples=[
                voice_pb2.VoiceSampleResult(
                    index=s.index,
                    accepted=s.accepted,
                    reasons=convert.reasons_to_proto(s.reasons),
                    quality=convert.clip_report_to_proto(s.report),
                    liveness=convert.liveness_to_proto(s.liveness),
                )
                for s in out.samples
            ],
            total_net_speech_seconds=out.total_net_speech_s,
            duplicates=convert.duplicates_to_proto(out.duplicates),
            reasons=convert.reasons_to_proto(out.refusal),
        )
        if out.template is not None:
            reply.template.CopyFrom(convert.template_to_proto(out.template))
        return reply

    def VerifyVoice(
        self, request: voice_pb2.VerifyVoiceRequest, context: grpc.ServicerContext
    ) -> voice_pb2.VerifyVoiceResponse:
        out = self.voices.verify(
            tenant=request.tenant,
            subject_id=request.subject_id,
            clip=convert.audio_from_proto(request.clip, "clip"),
            policy=convert.policy_from_proto(request.policy),
        )
        return voice_pb2.VerifyVoiceResponse(
            subject_id=out.subject_id,
            match=convert.match_to_proto(out.match, out.model),
            quality=convert.clip_report_to_proto(out.clip),
            liveness=convert.liveness_to_proto(out.liveness),
            decision=convert.decision_for(out.match, out.retry, out.liveness),
            reasons=convert.reasons_to_proto(out.retry),
        )

    def IdentifyVoice(
        self, request: voice_pb2.IdentifyVoiceRequest, context: grpc.ServicerContext
    ) -> voice_pb2.IdentifyVoiceResponse:
        out = self.voices.identify(
            tenant=request.tenant,
            clip=convert.audio_from_proto(request.clip, "clip"),
            top_k=request.top_k,
            min_confidence=request.min_confidence,
            policy=convert.policy_from_proto(request.policy),
        )
        return voice_pb2.IdentifyVoiceResponse(
            candidates=convert.candidates_to_proto(out.result),
            quality=convert.clip_report_to_proto(out.clip),
            liveness=convert.liveness_to_proto(out.liveness),
            decision=convert.identify_decision(out.result, out.retry, out.liveness),
            reasons=convert.reasons_to_proto(out.retry),
            model=out.model,
            operating_point=out.result.operating_point,
            threshold=out.result.threshold,
            expected_fpir=out.result.expected_fpir,
        )

    def VerifyVoiceStream(
        self,
        request_iterator: Iterator[voice_pb2.VoiceStreamRequest],
        context: grpc.ServicerContext,
    ) -> Iterator[voice_pb2.VoiceStreamResponse]:
        calls = self.live_calls
        with calls.admitted(context) as call:
            first = next(request_iterator, None)
            with calls.busy(call):
                if first is None or first.WhichOneof("message") != "config":
                    raise StreamProtocolError("the first stream message must carry the config")
                session = self.voices.open_stream(convert.stream_config_from_proto(first.config))
                calls.join_tenant(call, session.template.tenant)
            model = self.voices.model
            for message in request_iterator:
                with calls.busy(call):
                    kind = message.WhichOneof("message")
                    if kind == "config":
                        raise StreamProtocolError(
                            "the stream format cannot change mid-call: send config only once, first"
                        )
                    if kind != "audio":
                        raise StreamProtocolError(
                            "a stream message after the config must carry audio"
                        )
                    updates = session.feed(message.audio)
                calls.heard(call, session.call_seconds)
                for update in updates:
                    yield _update_to_proto(update, model)
            with calls.busy(call):
                final = session.finish()
            yield _update_to_proto(final, model)


def _update_to_proto(update: StreamUpdate, model: str) -> voice_pb2.VoiceStreamResponse:
    reply = voice_pb2.VoiceStreamResponse(
        final=update.final,
        call_seconds=update.call_seconds,
        net_speech_seconds=update.net_speech_seconds,
        liveness=convert.liveness_to_proto(update.liveness),
        reasons=convert.reasons_to_proto(update.issues),
    )
    if update.match is not None:
        reply.match.CopyFrom(convert.match_to_proto(update.match, model))
    reply.decision = convert.decision_for(update.match, update.issues, update.liveness)
    return reply
