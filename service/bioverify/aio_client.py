"""An asyncio client for the bioverify v1 API (grpc.aio), with the same options, retries and
errors as the synchronous ``BioverifyClient``.

    async with AsyncBioverifyClient("localhost:50051", token="...") as client:
        reply = await client.verify_face("customer-123", selfie_bytes)
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable, AsyncIterator, Callable, Coroutine, Iterable
from typing import Any, Concatenate, ParamSpec, TypeVar, cast

import grpc
from grpc import aio
from grpc_health.v1 import health_pb2, health_pb2_grpc

from bioverify import client_requests as requests
from bioverify.client import (
    BioverifyClientError,
    client_error,
    gives_up,
    retry_delay,
    retryable,
    tls_credentials,
)
from bioverify.v1 import (
    face_pb2_grpc,
    info_pb2_grpc,
    liveness_pb2_grpc,
    subjects_pb2_grpc,
    voice_pb2,
    voice_pb2_grpc,
)

P = ParamSpec("P")
R = TypeVar("R")


def bind_async_unary(
    rpc: requests.Unary[P, R],
) -> Callable[Concatenate[AsyncBioverifyClient, P], Coroutine[Any, Any, R]]:
    """A client coroutine: build the request, await ``client.<service>.<method>`` with retries."""

    async def call(client: AsyncBioverifyClient, /, *args: P.args, **kwargs: P.kwargs) -> R:
        stub = getattr(getattr(client, rpc.service), rpc.method)
        return cast(R, await client._call(stub, rpc.build(*args, **kwargs)))

    requests.describe_method(call, rpc, f"Coroutine[{rpc.reply.__name__}]")
    return call


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
        credentials = tls_credentials(tls_ca, tls_client_cert, tls_client_key)
        if credentials is not None:
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

    async def wait_until_serving(
        self, timeout: float = 120.0, *, unreachable_timeout: float | None = None
    ) -> None:
        """As ``BioverifyClient.wait_until_serving``."""
        loop = asyncio.get_running_loop()
        started = loop.time()
        deadline = started + timeout
        answered = False
        while True:
            try:
                reply = await self._health.Check(health_pb2.HealthCheckRequest(), timeout=2.0)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
                answered = True
            except grpc.RpcError as exc:
                if gives_up(answered, loop.time() - started, unreachable_timeout):
                    raise client_error(exc) from exc
            if loop.time() > deadline:
                raise TimeoutError(f"service not serving after {timeout:.0f} s")
            await asyncio.sleep(0.2)

    # -- unary RPCs (signatures and docstrings: ``client_requests``) ----------------------
    audio = staticmethod(requests.audio)
    compare_faces = bind_async_unary(requests.compare_faces)
    enroll_face = bind_async_unary(requests.enroll_face)
    verify_face = bind_async_unary(requests.verify_face)
    identify_face = bind_async_unary(requests.identify_face)
    compare_voices = bind_async_unary(requests.compare_voices)
    enroll_voice = bind_async_unary(requests.enroll_voice)
    verify_voice = bind_async_unary(requests.verify_voice)
    identify_voice = bind_async_unary(requests.identify_voice)
    check_liveness = bind_async_unary(requests.check_liveness)
    start_liveness_challenge = bind_async_unary(requests.start_liveness_challenge)
    get_subject = bind_async_unary(requests.get_subject)
    list_subjects = bind_async_unary(requests.list_subjects)
    delete_subject = bind_async_unary(requests.delete_subject)
    service_info = bind_async_unary(requests.service_info)

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
        final one. ``chunks`` may be a plain or an async iterable (e.g. audio from a socket).
        ``timeout``: a deadline for the whole call (None: none; see the sync client)."""
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

        call = self.voice.VerifyVoiceStream(messages(), timeout=timeout, metadata=self._metadata)
        try:
            async for reply in call:
                yield reply
        except aio.AioRpcError as exc:
            raise client_error(exc) from exc

    async def _call(self, method: Callable[..., Any], request: Any) -> Any:
        attempt = 0
        while True:
            try:
                return await method(request, timeout=self.timeout, metadata=self._metadata)
            except aio.AioRpcError as exc:
                error = client_error(exc)
                if retryable(error) and attempt < self.retries:
                    await asyncio.sleep(retry_delay(self.backoff, attempt))
                    attempt += 1
                    continue
                raise error from exc


__all__ = ["AsyncBioverifyClient", "BioverifyClientError"]
