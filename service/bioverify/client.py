"""A small synchronous Python client for the bioverify v1 API.

    client = BioverifyClient("localhost:50051")
    result = client.compare_faces(open("a.jpg", "rb").read(), open("b.jpg", "rb").read())
    print(result.match.confidence, result.decision)

Errors come back as ``BioverifyClientError`` (with the gRPC status code and the server's
message); UNAVAILABLE is retried with exponential backoff.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, TypeVar

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from bioverify import client_requests as requests
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

T = TypeVar("T")


class BioverifyClientError(Exception):
    """An RPC failed. ``code`` is the gRPC status code, ``reason`` the server's stable code."""

    def __init__(self, code: grpc.StatusCode, message: str, reason: str = "") -> None:
        super().__init__(f"{code.name}: {message}")
        self.code = code
        self.message = message
        self.reason = reason


class BioverifyClient:
    def __init__(
        self,
        target: str,
        *,
        timeout: float = 30.0,
        retries: int = 3,
        backoff: float = 0.2,
        credentials: grpc.ChannelCredentials | None = None,
        tls_ca: bytes | None = None,
        tls_client_cert: bytes | None = None,
        tls_client_key: bytes | None = None,
        token: str | None = None,
        max_message_bytes: int = 64 * 1024 * 1024,
    ) -> None:
        """``tls_ca`` (PEM) turns TLS on (``tls_client_cert``/``tls_client_key`` for mutual
        TLS); ``token`` is sent as ``authorization: Bearer <token>`` on every call."""
        if credentials is None and tls_ca is not None:
            credentials = grpc.ssl_channel_credentials(
                root_certificates=tls_ca,
                private_key=tls_client_key,
                certificate_chain=tls_client_cert,
            )
        self._metadata: tuple[tuple[str, str], ...] = (
            (("authorization", f"Bearer {token}"),) if token else ()
        )
        options = [
            ("grpc.max_send_message_length", max_message_bytes),
            ("grpc.max_receive_message_length", max_message_bytes),
        ]
        self._channel = (
            grpc.secure_channel(target, credentials, options=options)
            if credentials is not None
            else grpc.insecure_channel(target, options=options)
        )
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.face = face_pb2_grpc.FaceServiceStub(self._channel)
        self.voice = voice_pb2_grpc.VoiceServiceStub(self._channel)
        self.subjects = subjects_pb2_grpc.SubjectServiceStub(self._channel)
        self.info = info_pb2_grpc.InfoServiceStub(self._channel)
        self.liveness = liveness_pb2_grpc.LivenessServiceStub(self._channel)
        self._health = health_pb2_grpc.HealthStub(self._channel)

    # -- lifecycle --------------------------------------------------------------------------
    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> BioverifyClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def wait_until_serving(self, timeout: float = 120.0) -> None:
        """Block until the health service reports SERVING (models loaded and warm)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                reply = self._health.Check(health_pb2.HealthCheckRequest(service=""), timeout=2.0)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.RpcError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"service not serving after {timeout:.0f} s")
            time.sleep(0.2)

    # -- face -------------------------------------------------------------------------------
    def compare_faces(
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
        reply: face_pb2.CompareFacesResponse = self._call(self.face.CompareFaces, request)
        return reply

    def enroll_face(
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
        reply: face_pb2.EnrollFaceResponse = self._call(self.face.EnrollFace, request)
        return reply

    def verify_face(
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
        reply: face_pb2.VerifyFaceResponse = self._call(self.face.VerifyFace, request)
        return reply

    def identify_face(
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
        reply: face_pb2.IdentifyFaceResponse = self._call(self.face.IdentifyFace, request)
        return reply

    # -- voice ------------------------------------------------------------------------------
    @staticmethod
    def audio(
        data: bytes,
        *,
        encoding: str = "",
        sample_rate_hz: int = 0,
        channels: int = 0,
        channel: int | None = None,
    ) -> voice_pb2.Audio:
        """An audio message: a WAV/FLAC/OGG/MP3 file as is, or raw ``PCM_S16LE``/``MULAW``/
        ``ALAW`` with its sample rate."""
        return requests.audio(data, encoding, sample_rate_hz, channels, channel)

    def compare_voices(
        self, clip_a: voice_pb2.Audio, clip_b: voice_pb2.Audio, *, operating_point: str = ""
    ) -> voice_pb2.CompareVoicesResponse:
        request = requests.compare_voices(clip_a, clip_b, operating_point)
        reply: voice_pb2.CompareVoicesResponse = self._call(self.voice.CompareVoices, request)
        return reply

    def enroll_voice(
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
        reply: voice_pb2.EnrollVoiceResponse = self._call(self.voice.EnrollVoice, request)
        return reply

    def verify_voice(
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
        reply: voice_pb2.VerifyVoiceResponse = self._call(self.voice.VerifyVoice, request)
        return reply

    def identify_voice(
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
        reply: voice_pb2.IdentifyVoiceResponse = self._call(self.voice.IdentifyVoice, request)
        return reply

    # -- liveness ---------------------------------------------------------------------------
    def check_liveness(
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
        reply: liveness_pb2.CheckLivenessResponse = self._call(self.liveness.CheckLiveness, request)
        return reply

    def start_liveness_challenge(self, *, tenant: str = "") -> liveness_pb2.LivenessChallenge:
        """A random challenge (head turns, nods, blinks) with a single-use nonce and an expiry."""
        request = liveness_pb2.StartLivenessChallengeRequest(tenant=tenant)
        reply: liveness_pb2.LivenessChallenge = self._call(
            self.liveness.StartLivenessChallenge, request
        )
        return reply

    def verify_voice_stream(
        self,
        subject_id: str,
        chunks: Iterable[bytes],
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
    ) -> Iterator[voice_pb2.VoiceStreamResponse]:
        """Verify a live call: yields interim results as speech accumulates, then the final one.

        Each update's ``liveness`` is the running synthetic-speech assessment (``checked``
        once enough speech was assessed, when the service has a voice anti-spoofing pack),
        reported whatever the policy; ``require_liveness`` (None: the tenant's / service's
        default) makes a spoof verdict turn the decision into ``SPOOF_SUSPECTED`` unless
        ``observe_only``."""
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

        def messages() -> Iterator[voice_pb2.VoiceStreamRequest]:
            yield first
            for chunk in chunks:
                yield voice_pb2.VoiceStreamRequest(audio=chunk)

        try:
            yield from self.voice.VerifyVoiceStream(
                messages(), timeout=timeout or self.timeout, metadata=self._metadata
            )
        except grpc.RpcError as exc:
            raise client_error(exc) from exc

    # -- subjects ---------------------------------------------------------------------------
    def get_subject(self, subject_id: str, *, tenant: str = "") -> subjects_pb2.Subject:
        request = subjects_pb2.GetSubjectRequest(subject_id=subject_id, tenant=tenant)
        reply: subjects_pb2.Subject = self._call(self.subjects.GetSubject, request)
        return reply

    def list_subjects(
        self, *, tenant: str = "", page_size: int = 0, page_token: str = ""
    ) -> subjects_pb2.ListSubjectsResponse:
        request = subjects_pb2.ListSubjectsRequest(
            tenant=tenant, page_size=page_size, page_token=page_token
        )
        reply: subjects_pb2.ListSubjectsResponse = self._call(self.subjects.ListSubjects, request)
        return reply

    def iter_subjects(
        self, *, tenant: str = "", page_size: int = 500
    ) -> Iterator[subjects_pb2.Subject]:
        token = ""
        while True:
            page = self.list_subjects(tenant=tenant, page_size=page_size, page_token=token)
            yield from page.subjects
            token = page.next_page_token
            if not token:
                return

    def delete_subject(
        self, subject_id: str, *, tenant: str = ""
    ) -> subjects_pb2.DeleteSubjectResponse:
        request = subjects_pb2.DeleteSubjectRequest(subject_id=subject_id, tenant=tenant)
        reply: subjects_pb2.DeleteSubjectResponse = self._call(self.subjects.DeleteSubject, request)
        return reply

    # -- info -------------------------------------------------------------------------------
    def service_info(self) -> info_pb2.ServiceInfo:
        reply: info_pb2.ServiceInfo = self._call(
            self.info.GetServiceInfo, info_pb2.GetServiceInfoRequest()
        )
        return reply

    # -- plumbing ---------------------------------------------------------------------------
    def _call(self, method: Callable[..., Any], request: Any) -> Any:
        attempt = 0
        while True:
            try:
                return method(request, timeout=self.timeout, metadata=self._metadata)
            except grpc.RpcError as exc:
                code = exc.code() if hasattr(exc, "code") else grpc.StatusCode.UNKNOWN
                if code == grpc.StatusCode.UNAVAILABLE and attempt < self.retries:
                    time.sleep(self.backoff * (2**attempt))
                    attempt += 1
                    continue
                raise client_error(exc) from exc


def client_error(exc: grpc.RpcError) -> BioverifyClientError:
    code = exc.code() if hasattr(exc, "code") else grpc.StatusCode.UNKNOWN
    details = exc.details() if hasattr(exc, "details") else str(exc)
    reason = ""
    trailing = exc.trailing_metadata() if hasattr(exc, "trailing_metadata") else None
    for key, value in trailing or ():
        if key == "bioverify-reason":
            reason = str(value)
    return BioverifyClientError(code, details or "", reason)
