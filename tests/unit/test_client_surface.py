"""The sync and asyncio clients bind the same unary RPC table: same methods, same signatures,
each reaching the stub method its request builder is tagged with."""

from __future__ import annotations

import inspect

import grpc
import pytest

from bioverify import client_requests as requests
from bioverify.aio_client import AsyncBioverifyClient
from bioverify.client import BioverifyClient
from bioverify.v1 import (
    common_pb2,
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

STUBS = {
    "face": face_pb2_grpc.FaceServiceStub,
    "voice": voice_pb2_grpc.VoiceServiceStub,
    "liveness": liveness_pb2_grpc.LivenessServiceStub,
    "subjects": subjects_pb2_grpc.SubjectServiceStub,
    "info": info_pb2_grpc.InfoServiceStub,
}
PROTOS = {
    "face": face_pb2,
    "voice": voice_pb2,
    "liveness": liveness_pb2,
    "subjects": subjects_pb2,
    "info": info_pb2,
}
RPCS = {name: rpc for name, rpc in vars(requests).items() if isinstance(rpc, requests.Unary)}


def test_every_rpc_is_a_method_of_both_clients_with_the_builder_signature() -> None:
    assert len(RPCS) == 14  # every unary RPC of the five services the SDK covers
    unary = {
        (service, method.name)
        for service, module in PROTOS.items()
        for described in module.DESCRIPTOR.services_by_name.values()
        for method in described.methods
        if not (method.client_streaming or method.server_streaming)
    }
    assert {(rpc.service, rpc.method) for rpc in RPCS.values()} == unary
    for name, rpc in RPCS.items():
        for cls in (BioverifyClient, AsyncBioverifyClient):
            method = getattr(cls, name)
            assert method.__name__ == name
            params = list(inspect.signature(method).parameters.values())
            assert params[0].name == "self"
            assert params[1:] == list(inspect.signature(rpc.build).parameters.values()), name
            assert method.__doc__ == rpc.build.__doc__
        assert inspect.iscoroutinefunction(getattr(AsyncBioverifyClient, name))
        with grpc.insecure_channel("localhost:1") as channel:  # the tagged stub method exists
            stub = STUBS[rpc.service](channel)
            assert callable(getattr(stub, rpc.method)), f"{rpc.service}.{rpc.method}"


def test_request_builders_validate_before_any_call() -> None:
    with pytest.raises(ValueError, match="exactly one of image, frames or clip"):
        BioverifyClient("localhost:1").check_liveness()
    request = requests.enroll_face.build("s", [b"x"], refuse_duplicates=True, tenant="t")
    assert request.subject_id == "s" and request.tenant == "t" and request.duplicate_action
    assert request.duplicate_action == common_pb2.DUPLICATE_REFUSE


def test_identification_requests_carry_the_named_operating_point() -> None:
    face = requests.identify_face.build(b"x", tenant="t", operating_point="fmr_1e-4")
    assert face.policy.operating_point == "fmr_1e-4" and face.tenant == "t"
    voice = requests.identify_voice.build(requests.audio(b"x"), operating_point="fmr_1e-2")
    assert voice.policy.operating_point == "fmr_1e-2"
    assert requests.identify_face.build(b"x").policy.operating_point == ""


@pytest.mark.parametrize(
    ("tls", "message"),
    [
        ({"tls_client_cert": b"c", "tls_client_key": b"k"}, "needs tls_ca"),
        ({"tls_ca": b"ca", "tls_client_cert": b"c"}, "go together"),
        ({"tls_ca": b"ca", "tls_client_key": b"k"}, "go together"),
    ],
)
def test_a_client_certificate_never_falls_back_to_plaintext(
    tls: dict[str, bytes], message: str
) -> None:
    """Both clients refuse half a TLS configuration instead of opening a plaintext channel."""
    with pytest.raises(ValueError, match=message):
        BioverifyClient("127.0.0.1:1", **tls)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=message):
        AsyncBioverifyClient("127.0.0.1:1", **tls)  # type: ignore[arg-type]


def test_retry_delays_are_jittered_within_the_exponential_step() -> None:
    """Clients refused together must not all retry at the same moment (full jitter)."""
    from bioverify.client import retry_delay

    for attempt in range(4):
        delays = [retry_delay(0.2, attempt) for _ in range(200)]
        assert all(0.0 <= d <= 0.2 * 2**attempt for d in delays)
        assert len(set(delays)) > 150  # spread, not one fixed step
