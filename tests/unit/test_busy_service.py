"""A service too busy to take a request (RESOURCE_EXHAUSTED, OVERLOADED: its inference queue
is full) is asked again by the SDK, with backoff; an evaluation counts a sample still refused
after that as failed (reason OVERLOADED) and goes on, instead of aborting. The service here is
a real gRPC server on a loopback port behind the service's own error-mapping interceptor, with
a FaceService that raises the service's Overloaded for its first calls."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc
import pytest

from bioverify.aio_client import AsyncBioverifyClient
from bioverify.client import BioverifyClient, BioverifyClientError
from bioverify.errors import BioverifyError, Overloaded, TooManyChallenges
from bioverify.server.request_reads import RequestReads
from bioverify.server.status import ErrorMappingInterceptor
from bioverify.v1 import common_pb2, face_pb2, face_pb2_grpc
from bioverify_admin.datasets import Pair
from bioverify_admin.eval_face import run_face_pairs


class BusyFaces(face_pb2_grpc.FaceServiceServicer):  # type: ignore[misc]
    """CompareFaces raises ``error`` for the first ``busy_for`` calls, then answers."""

    def __init__(self) -> None:
        self.busy_for = 0
        self.error: type[BioverifyError] = Overloaded
        self.calls = 0
        self._lock = threading.Lock()

    def CompareFaces(self, request: Any, context: grpc.ServicerContext) -> Any:
        with self._lock:
            self.calls += 1
            busy = self.calls <= self.busy_for
        if busy:
            raise self.error("the service is at capacity; retry with backoff")
        return face_pb2.CompareFacesResponse(
            match=common_pb2.MatchScore(similarity=0.8, threshold=0.5)
        )


@pytest.fixture
def busy() -> Iterator[tuple[str, BusyFaces]]:
    faces = BusyFaces()
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=4),
        interceptors=[ErrorMappingInterceptor(RequestReads(60.0))],
    )
    face_pb2_grpc.add_FaceServiceServicer_to_server(faces, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield f"127.0.0.1:{port}", faces
    server.stop(None)


def test_the_sdk_retries_an_overloaded_request(busy: tuple[str, BusyFaces]) -> None:
    target, faces = busy
    faces.busy_for = 2
    with BioverifyClient(target, retries=3, backoff=0.01) as client:
        assert client.compare_faces(b"a", b"b").match.similarity == pytest.approx(0.8)
    assert faces.calls == 3

    async def aio() -> None:
        async with AsyncBioverifyClient(target, retries=3, backoff=0.01) as client:
            assert (await client.compare_faces(b"a", b"b")).match.similarity > 0

    faces.calls = 0
    asyncio.run(aio())
    assert faces.calls == 3


def test_the_sdk_gives_up_after_its_retries_and_never_retries_a_tenants_cap(
    busy: tuple[str, BusyFaces],
) -> None:
    target, faces = busy
    faces.busy_for = 100
    with BioverifyClient(target, retries=2, backoff=0.01) as client:
        with pytest.raises(BioverifyClientError) as info:
            client.compare_faces(b"a", b"b")
        assert info.value.code == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert info.value.reason == "OVERLOADED"
        assert faces.calls == 3  # bounded: the first attempt and two retries
        faces.calls, faces.error = 0, TooManyChallenges  # the same again: no point retrying
        with pytest.raises(BioverifyClientError) as info:
            client.compare_faces(b"a", b"b")
        assert info.value.reason == "TOO_MANY_CHALLENGES" and faces.calls == 1


def test_an_eval_counts_a_sample_still_overloaded_as_failed_and_goes_on(
    busy: tuple[str, BusyFaces], tmp_path: Path
) -> None:
    """Of three pairs, the first meets a service that stays busy through the SDK's retries:
    it fails with reason OVERLOADED, and the others are scored."""
    target, faces = busy
    for name in "ab":
        (tmp_path / name).write_bytes(b"jpeg")
    pairs = [Pair(tmp_path / "a", tmp_path / "b", same) for same in (True, False, True)]
    faces.busy_for = 2
    with BioverifyClient(target, retries=1, backoff=0.01) as client:
        evaluation = run_face_pairs(client, pairs)
    failures = [r.failure for r in evaluation.results]
    assert failures == ["OVERLOADED", "", ""]
    assert [r.similarity for r in evaluation.results[1:]] == [pytest.approx(0.8)] * 2
