"""A small synchronous Python client for the bioverify v1 API.

    client = BioverifyClient("localhost:50051")
    result = client.compare_faces(open("a.jpg", "rb").read(), open("b.jpg", "rb").read())
    print(result.match.confidence, result.decision)

Errors come back as ``BioverifyClientError`` (with the gRPC status code and the server's
message). UNAVAILABLE, and RESOURCE_EXHAUSTED with reason OVERLOADED (the service was too busy
to take the request: its inference queue was full), are retried with exponential backoff
(``retries``, ``backoff``; see ``retryable``). That includes a request answering a liveness
challenge: the service uses a nonce up only with the verdict it vouches for (and gives it back
when EnrollFace's write fails UNAVAILABLE), so the retry can answer it again. Only when the
first attempt did get its verdict and the reply was lost (the connection dropped) does the
retry come back FAILED_PRECONDITION (``CHALLENGE_INVALID``): start a new challenge then.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Concatenate, ParamSpec, TypeVar, cast

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from bioverify import client_requests as requests
from bioverify.v1 import (
    face_pb2_grpc,
    info_pb2_grpc,
    liveness_pb2_grpc,
    subjects_pb2,
    subjects_pb2_grpc,
    voice_pb2,
    voice_pb2_grpc,
)

P = ParamSpec("P")
R = TypeVar("R")


class BioverifyClientError(Exception):
    """An RPC failed. ``code`` is the gRPC status code, ``reason`` the server's stable code."""

    def __init__(self, code: grpc.StatusCode, message: str, reason: str = "") -> None:
        super().__init__(f"{code.name}: {message}")
        self.code = code
        self.message = message
        self.reason = reason


def bind_unary(rpc: requests.Unary[P, R]) -> Callable[Concatenate[BioverifyClient, P], R]:
    """A client method: build the request, call ``client.<service>.<method>`` with retries."""

    def call(client: BioverifyClient, /, *args: P.args, **kwargs: P.kwargs) -> R:
        stub = getattr(getattr(client, rpc.service), rpc.method)
        return cast(R, client._call(stub, rpc.build(*args, **kwargs)))

    requests.describe_method(call, rpc, rpc.reply.__name__)
    return call


def retryable(error: BioverifyClientError) -> bool:
    """Whether a failed request is worth sending again after a backoff: the service could not
    be reached (UNAVAILABLE), or was too busy to take it (RESOURCE_EXHAUSTED, OVERLOADED).
    Not other RESOURCE_EXHAUSTED reasons (TOO_LARGE, a tenant's TOO_MANY_CHALLENGES): the same
    request would be refused alike."""
    return error.code == grpc.StatusCode.UNAVAILABLE or (
        error.code == grpc.StatusCode.RESOURCE_EXHAUSTED and error.reason == "OVERLOADED"
    )


def retry_delay(backoff: float, attempt: int) -> float:
    """Seconds to wait before retry ``attempt`` (0 first): "full jitter", uniform up to the
    exponential step, so clients refused together do not all come back at the same moment."""
    return random.uniform(0.0, backoff * (2**attempt))


def gives_up(answered: bool, waited_s: float, unreachable_timeout: float | None) -> bool:
    """``wait_until_serving``: stop waiting for a service that has not answered at all for
    ``unreachable_timeout`` seconds (one that answered NOT_SERVING is still loading)."""
    return not answered and unreachable_timeout is not None and waited_s > unreachable_timeout


def tls_credentials(
    tls_ca: bytes | None, tls_client_cert: bytes | None, tls_client_key: bytes | None
) -> grpc.ChannelCredentials | None:
    """TLS channel credentials, or None for plaintext. A client certificate or key without
    ``tls_ca``, or one without the other, is a ``ValueError``: it must never fall back to a
    plaintext channel silently."""
    if (tls_client_cert is None) != (tls_client_key is None):
        raise ValueError("tls_client_cert and tls_client_key go together (mutual TLS)")
    if tls_ca is None:
        if tls_client_cert is not None:
            raise ValueError("mutual TLS needs tls_ca too: a client certificate alone is not TLS")
        return None
    return grpc.ssl_channel_credentials(
        root_certificates=tls_ca, private_key=tls_client_key, certificate_chain=tls_client_cert
    )


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
        if credentials is None:
            credentials = tls_credentials(tls_ca, tls_client_cert, tls_client_key)
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

    def wait_until_serving(
        self, timeout: float = 120.0, *, unreachable_timeout: float | None = None
    ) -> None:
        """Block until the health service reports SERVING (models loaded and warm); raise
        ``TimeoutError`` after ``timeout`` seconds. ``unreachable_timeout``: give up sooner,
        raising the ``BioverifyClientError`` of the last attempt (UNAVAILABLE: no such host,
        connection refused, TLS handshake failed, ...), when the service has not answered at
        all for that long; one that answers NOT_SERVING (still loading) is waited for."""
        started = time.monotonic()
        deadline = started + timeout
        answered = False
        while True:
            try:
                reply = self._health.Check(health_pb2.HealthCheckRequest(service=""), timeout=2.0)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
                answered = True
            except grpc.RpcError as exc:
                if gives_up(answered, time.monotonic() - started, unreachable_timeout):
                    raise client_error(exc) from exc
            if time.monotonic() > deadline:
                raise TimeoutError(f"service not serving after {timeout:.0f} s")
            time.sleep(0.2)

    # -- unary RPCs (signatures and docstrings: ``client_requests``) ----------------------
    audio = staticmethod(requests.audio)
    compare_faces = bind_unary(requests.compare_faces)
    enroll_face = bind_unary(requests.enroll_face)
    verify_face = bind_unary(requests.verify_face)
    identify_face = bind_unary(requests.identify_face)
    compare_voices = bind_unary(requests.compare_voices)
    enroll_voice = bind_unary(requests.enroll_voice)
    verify_voice = bind_unary(requests.verify_voice)
    identify_voice = bind_unary(requests.identify_voice)
    check_liveness = bind_unary(requests.check_liveness)
    start_liveness_challenge = bind_unary(requests.start_liveness_challenge)
    get_subject = bind_unary(requests.get_subject)
    list_subjects = bind_unary(requests.list_subjects)
    delete_subject = bind_unary(requests.delete_subject)
    service_info = bind_unary(requests.service_info)

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
        ``observe_only``. ``timeout``: a deadline for the whole call (None: none, as a call
        lasts as long as its audio; the service ends it at its ``MAX_CALL_SECONDS``), not
        the client's per-request ``timeout``."""
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
                messages(), timeout=timeout, metadata=self._metadata
            )
        except grpc.RpcError as exc:
            raise client_error(exc) from exc

    # -- subjects ---------------------------------------------------------------------------
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

    # -- plumbing ---------------------------------------------------------------------------
    def _call(self, method: Callable[..., Any], request: Any) -> Any:
        attempt = 0
        while True:
            try:
                return method(request, timeout=self.timeout, metadata=self._metadata)
            except grpc.RpcError as exc:
                error = client_error(exc)
                if retryable(error) and attempt < self.retries:
                    time.sleep(retry_delay(self.backoff, attempt))
                    attempt += 1
                    continue
                raise error from exc


def client_error(exc: grpc.RpcError) -> BioverifyClientError:
    code = exc.code() if hasattr(exc, "code") else grpc.StatusCode.UNKNOWN
    details = (exc.details() if hasattr(exc, "details") else str(exc)) or ""
    reason = ""
    trailing = exc.trailing_metadata() if hasattr(exc, "trailing_metadata") else None
    for key, value in trailing or ():
        if key == "bioverify-reason":
            reason = str(value)
    if not reason and code == grpc.StatusCode.RESOURCE_EXHAUSTED and "larger than max" in details:
        # gRPC itself refused a message over the size limit (the server's or this channel's)
        # before any service code ran, so no reason came with it: it is the same TOO_LARGE.
        reason = "TOO_LARGE"
    return BioverifyClientError(code, details, reason)
