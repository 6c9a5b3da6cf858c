"""An asyncio client for the bioverify v1 API (grpc.aio), with the same options, retries and
errors as the synchronous ``BioverifyClient``.

    async with AsyncBioverifyClient("localhost:50051", token="...") as client:
        reply = await client.verify_face("customer-123", selfie_bytes)
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable, Mapping, Sequence
from typing import Any

import grpc
from grpc import aio
from grpc_health.v1 import health_pb2, health_pb2_grpc

from bioverify import client_requests as requests
from bioverify.client import BioverifyClientError, client_error
from bioverify.v1 import (
    face_pb2,
    face_pb2_grpc,
    info_pb2,
    info_pb2_grpc,
    liveness_pb2,
    liveness_pb2_grpc,
    subjects_pb2,
    subjects_pb2_grpc,
    voice_pb2,
    voice_pb2_grpc,
)


class AsyncBioverifyClient:
    def __init__(
        self,
        target: str,
        *,
        timeout: float = 30.0,
        retries: int = 3,
        backoff: float = 0.2,
        tls_ca: bytes | None = None,
        tls_client_cert: bytes | None = None,
        tls_client_key: bytes | None = None,
        token: str | None = None,
        max_message_bytes: int = 64 * 1024 * 1024,
    ) -> None:
        options = [
            ("grpc.max_send_message_length", max_message_bytes),
            ("grpc.max_receive_message_length", max_message_bytes),
        ]
        if tls_ca is not None:
            credentials = grpc.ssl_channel_credentials(tls_ca, tls_client_key, tls_client_cert)
            self._channel = aio.secure_channel(target, credentials, options=options)
        else:
            self._channel = aio.insecure_channel(target, options=options)
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self._metadata: tuple[tuple[str, str], ...] = (
            (("authorization", f"Bearer {token}"),) if token else ()
        )
        self.face = face_pb2_grpc.FaceServiceStub(self._channel)
        self.voice = voice_pb2_grpc.VoiceServiceStub(self._channel)
        self.subjects = subjects_pb2_grpc.SubjectServiceStub(self._channel)
        self.info = info_pb2_grpc.InfoServiceStub(self._channel)
        self.liveness = liveness_pb2_grpc.LivenessServiceStub(self._channel)
        self._health = health_pb2_grpc.HealthStub(self._channel)

    async def close(self) -> None:
        await self._channel.close()

    async def __aenter__(self) -> AsyncBioverifyClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def wait_until_serving(self, timeout: float = 120.0) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            try:
                reply = await self._health.Check(health_pb2.HealthCheckRequest(), timeout=2.0)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.RpcError:
                pass
            if loop.time() > deadline:
                raise TimeoutError(f"service not serving after {timeout:.0f} s")
            await asyncio.sleep(0.2)

    async def compare_faces(
        self,
        image_a: bytes,
        image_b: bytes,
        *,
        operating_point: str = "",
        require_liveness: bool | None = None,
        observe_only: bool = False,
    ) -> face_pb2.CompareFacesResponse:
        request = requests.compare_faces(
            image_a,
            image_b,
            operating_point,
            require_liveness=require_liveness,
            observe_only=observe_only,
        )
        reply: face_pb2.CompareFacesResponse = await self._call(self.face.CompareFaces, request)
        return reply

    async def enroll_face(
        self,
        subject_id: str,
        images: Sequence[bytes],
        *,
        metadata: Mapping[str, str] | None = None,
        tenant: str = "",
        replace: bool = False,
        dry_run: bool = False,
        refuse_duplicates: bool = False,
        require_liveness: bool | None = None,
        observe_only: bool = False,
    ) -> face_pb2.EnrollFaceResponse:
        """``refuse_duplicates``: ALREADY_EXISTS when the face matches another subject."""
        request = requests.enroll_face(
            subject_id,
            images,
            metadata,
            tenant,
            replace,
            dry_run,
            refuse_duplicates=refuse_duplicates,
            require_liveness=require_liveness,
            observe_only=observe_only,
        )
        reply: face_pb2.EnrollFaceResponse = await self._call(self.face.EnrollFace, request)
        return reply

    async def verify_face(
        self,
        subject_id: str,
        image: bytes,
        *,
        tenant: str = "",
        operating_point: str = "",
        require_liveness: bool | None = None,
        observe_only: bool = False,
    ) -> face_pb2.VerifyFaceResponse:
        request = requests.verify_face(
            subject_id,
            image,
            tenant,
            operating_point,
            require_liveness=require_liveness,
            observe_only=observe_only,
        )
        reply: face_pb2.VerifyFaceResponse = await self._call(self.face.VerifyFace, request)
        return reply

    async def identify_face(
        self,
        image: bytes,
        *,
        top_k: int = 5,
        min_confidence: float = 0.0,
        tenant: str = "",
        require_liveness: bool | None = None,
        observe_only: bool = False,
    ) -> face_pb2.IdentifyFaceResponse:
        request = requests.identify_face(
            image,
            top_k,
            min_confidence,
            tenant,
            require_liveness=require_liveness,
            observe_only=observe_only,
        )
        reply: face_pb2.IdentifyFaceResponse = await self._call(self.face.IdentifyFace, request)
        return reply

    @staticmethod
    def audio(
        data: bytes,
        *,
        encoding: str = "",
        sample_rate_hz: int = 0,
        channels: int = 0,
        channel: int | None = None,
    ) -> voice_pb2.Audio:
        return requests.audio(data, encoding, sample_rate_hz, channels, channel)

    async def compare_voices(
        self, clip_a: voice_pb2.Audio, clip_b: voice_pb2.Audio, *, operating_point: str = ""
    ) -> voice_pb2.CompareVoicesResponse:
        request = requests.compare_voices(clip_a, clip_b, operating_point)
        reply: voice_pb2.CompareVoicesResponse = await self._call(self.voice.CompareVoices, request)
        return reply

    async def enroll_voice(
        self,
        subject_id: str,
        clips: Sequence[voice_pb2.Audio],
        *,
        metadata: Mapping[str, str] | None = None,
        tenant: str = "",
        replace: bool = False,
        dry_run: bool = False,
        refuse_duplicates: bool = False,
        require_liveness: bool | None = None,
        observe_only: bool = False,
    ) -> voice_pb2.EnrollVoiceResponse:
        """``refuse_duplicates``: ALREADY_EXISTS when the voice matches another subject."""
        request = requests.enroll_voice(
            subject_id,
            clips,
            metadata,
            tenant,
            replace,
            dry_run,
            refuse_duplicates=refuse_duplicates,
            require_liveness=require_liveness,
            observe_only=observe_only,
        )
        reply: voice_pb2.EnrollVoiceResponse = await self._call(self.voice.EnrollVoice, request)
        return reply

    async def verify_voice(
        self,
        subject_id: str,
        clip: voice_pb2.Audio,
        *,
        tenant: str = "",
        operating_point: str = "",
        require_liveness: bool | None = None,
        observe_only: bool = False,
    ) -> voice_pb2.VerifyVoiceResponse:
        request = requests.verify_voice(
            subject_id,
            clip,
            tenant,
            operating_point,
            require_liveness=require_liveness,
            observe_only=observe_only,
        )
        reply: voice_pb2.VerifyVoiceResponse = await self._call(self.voice.VerifyVoice, request)
        return reply

    async def identify_voice(
        self,
        clip: voice_pb2.Audio,
        *,
        top_k: int = 5,
        min_confidence: float = 0.0,
        tenant: str = "",
        require_liveness: bool | None = None,
        observe_only: bool = False,
    ) -> voice_pb2.IdentifyVoiceResponse:
        request = requests.identify_voice(
            clip,
            top_k,
            min_confidence,
            tenant,
            require_liveness=require_liveness,
            observe_only=observe_only,
        )
        reply: voice_pb2.IdentifyVoiceResponse = await self._call(self.voice.IdentifyVoice, request)
        return reply

    # -- liveness ---------------------------------------------------------------------------
    async def check_liveness(
        self,
        *,
        image: bytes | None = None,
        frames: Sequence[bytes] | None = None,
        clip: voice_pb2.Audio | None = None,
        challenge_id: str = "",
        nonce: str = "",
        tenant: str = "",
    ) -> liveness_pb2.CheckLivenessResponse:
        """Liveness alone, for exactly one of an image, a frame sequence (with the
        ``challenge_id``/``nonce`` of an active challenge) or a voice clip."""
        request = requests.check_liveness(
            image=image,
            frames=frames,
            clip=clip,
            challenge_id=challenge_id,
            nonce=nonce,
            tenant=tenant,
        )
        reply: liveness_pb2.CheckLivenessResponse = await self._call(
            self.liveness.CheckLiveness, request
        )
        return reply

    async def start_liveness_challenge(self, *, tenant: str = "") -> liveness_pb2.LivenessChallenge:
        """A random challenge (head turns, nods, blinks) with a single-use nonce and an expiry."""
        request = liveness_pb2.StartLivenessChallengeRequest(tenant=tenant)
        reply: liveness_pb2.LivenessChallenge = await self._call(
            self.liveness.StartLivenessChallenge, request
        )
        return reply

    async def verify_voice_stream(
        self,
        subject_id: str,
        chunks: Iterable[bytes] | AsyncIterable[bytes],
        *,
        encoding: str,
        sample_rate_hz: int,
        channels: int = 1,
        channel: int | None = None,
        tenant: str = "",
        interim_every_speech_seconds: float = 0.0,
        operating_point: str = "",
        require_liveness: bool | None = None,
        observe_only: bool = False,
        timeout: float | None = None,
    ) -> AsyncIterator[voice_pb2.VoiceStreamResponse]:
        """Verify a live call (see ``BioverifyClient.verify_voice_stream``): yields interim
        results, each with the running synthetic-speech assessment in ``liveness``, then the
        final one. ``chunks`` may be a plain or an async iterable (e.g. audio from a socket)."""
        first = requests.voice_stream_config(
            subject_id,
            encoding=encoding,
            sample_rate_hz=sample_rate_hz,
            channels=channels,
            channel=channel,
            tenant=tenant,
            interim_every_speech_seconds=interim_every_speech_seconds,
            operating_point=operating_point,
            require_liveness=require_liveness,
            observe_only=observe_only,
        )

        async def messages() -> AsyncIterator[voice_pb2.VoiceStreamRequest]:
            yield first
            if isinstance(chunks, AsyncIterable):
                async for chunk in chunks:
                    yield voice_pb2.VoiceStreamRequest(audio=chunk)
            else:
                for chunk in chunks:
                    yield voice_pb2.VoiceStreamRequest(audio=chunk)

        call = self.voice.VerifyVoiceStream(
            messages(), timeout=timeout or self.timeout, metadata=self._metadata
        )
        try:
            async for reply in call:
                yield reply
        except aio.AioRpcError as exc:
            raise client_error(exc) from exc

    async def get_subject(self, subject_id: str, *, tenant: str = "") -> subjects_pb2.Subject:
        request = subjects_pb2.GetSubjectRequest(subject_id=subject_id, tenant=tenant)
        reply: subjects_pb2.Subject = await self._call(self.subjects.GetSubject, request)
        return reply

    async def delete_subject(
        self, subject_id: str, *, tenant: str = ""
    ) -> subjects_pb2.DeleteSubjectResponse:
        request = subjects_pb2.DeleteSubjectRequest(subject_id=subject_id, tenant=tenant)
        reply: subjects_pb2.DeleteSubjectResponse = await self._call(
            self.subjects.DeleteSubject, request
        )
        return reply

    async def service_info(self) -> info_pb2.ServiceInfo:
        reply: info_pb2.ServiceInfo = await self._call(
            self.info.GetServiceInfo, info_pb2.GetServiceInfoRequest()
        )
        return reply

    async def _call(self, method: Callable[..., Any], request: Any) -> Any:
        attempt = 0
        while True:
            try:
                return await method(request, timeout=self.timeout, metadata=self._metadata)
            except aio.AioRpcError as exc:
                if exc.code() == grpc.StatusCode.UNAVAILABLE and attempt < self.retries:
                    await asyncio.sleep(self.backoff * (2**attempt))
                    attempt += 1
                    continue
                raise client_error(exc) from exc


__all__ = ["AsyncBioverifyClient", "BioverifyClientError"]
