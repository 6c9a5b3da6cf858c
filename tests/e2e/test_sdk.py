"""The client SDK as an app developer uses it: sync and asyncio, typed errors, retries."""

from __future__ import annotations

import asyncio
import time

import grpc
import pytest

from bioverify.aio_client import AsyncBioverifyClient
from bioverify.client import BioverifyClient, BioverifyClientError
from bioverify.v1 import common_pb2
from tests.conftest import DATA, lfw


def test_async_client_face_and_voice(face_server: str) -> None:
    clip = sorted((DATA / "speaker" / "audio" / "libri_367").glob("*.flac"))

    async def scenario() -> None:
        async with AsyncBioverifyClient(face_server, timeout=60) as client:
            await client.wait_until_serving(timeout=60)
            images = [lfw("Angela_Bassett", n).read_bytes() for n in (3, 4, 5)]
            enrolled = await client.enroll_face("sdk-async", images[:2], tenant="sdk")
            assert enrolled.accepted_count == 2
            # several requests in flight at once on one channel
            replies = await asyncio.gather(
                client.verify_face("sdk-async", images[2], tenant="sdk"),
                client.compare_faces(images[0], images[2]),
                client.identify_face(images[2], tenant="sdk"),
            )
            assert replies[0].decision == common_pb2.ACCEPT
            assert replies[1].match.decision == common_pb2.ACCEPT
            assert replies[2].candidates[0].subject_id == "sdk-async"
            voice = await client.compare_voices(
                client.audio(clip[0].read_bytes()), client.audio(clip[1].read_bytes())
            )
            assert voice.match.decision == common_pb2.ACCEPT
            with pytest.raises(BioverifyClientError) as info:
                await client.get_subject("nobody", tenant="sdk")
            assert (
                info.value.code == grpc.StatusCode.NOT_FOUND and info.value.reason == "NOT_ENROLLED"
            )
            await client.delete_subject("sdk-async", tenant="sdk")

    asyncio.run(scenario())


def test_errors_are_typed_with_stable_reasons(face_server: str) -> None:
    with BioverifyClient(face_server, retries=0) as client:
        with pytest.raises(BioverifyClientError) as info:
            client.compare_faces(b"not an image", lfw("Angela_Bassett", 3).read_bytes())
        assert info.value.code == grpc.StatusCode.INVALID_ARGUMENT
        assert info.value.reason == "INVALID_IMAGE"
        assert "image_a" in str(info.value)


def test_retries_with_backoff_when_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    import bioverify.client

    waits: list[float] = []
    jittered = bioverify.client.retry_delay

    def delay(backoff: float, attempt: int) -> float:
        waits.append(jittered(backoff, attempt))
        return waits[-1]

    # (not time.sleep: that is every thread's, and other services run in this process)
    monkeypatch.setattr(bioverify.client, "retry_delay", delay)
    client = BioverifyClient("127.0.0.1:1", retries=2, backoff=0.1, timeout=2)
    with pytest.raises(BioverifyClientError) as info:
        client.service_info()
    assert info.value.code == grpc.StatusCode.UNAVAILABLE
    # 3 attempts: a jittered wait (up to 0.1 s, then up to 0.2 s) before each retry
    assert len(waits) == 2 and 0 <= waits[0] <= 0.1 and 0 <= waits[1] <= 0.2
    client.close()


def test_wait_until_serving_gives_up_early_on_a_service_that_never_answers() -> None:
    with BioverifyClient("127.0.0.1:1") as client:
        with pytest.raises(TimeoutError):
            client.wait_until_serving(timeout=0.5)
        started = time.monotonic()
        with pytest.raises(BioverifyClientError) as info:
            client.wait_until_serving(timeout=60, unreachable_timeout=0.5)
        assert info.value.code == grpc.StatusCode.UNAVAILABLE
        assert time.monotonic() - started < 10

    async def aio() -> None:
        async with AsyncBioverifyClient("127.0.0.1:1") as client:
            with pytest.raises(BioverifyClientError) as info:
                await client.wait_until_serving(timeout=60, unreachable_timeout=0.5)
            assert info.value.code == grpc.StatusCode.UNAVAILABLE

    asyncio.run(aio())


def test_liveness_duplicates_and_voice_identification_through_the_sdk(face_server: str) -> None:
    spoof = DATA / "face_pad" / "gan_vs_ffhq"
    gan = sorted(spoof.rglob("fake_*.jpg"))[0].read_bytes()
    speaker = sorted((DATA / "speaker" / "audio" / "libri_2033").glob("*.flac"))
    with BioverifyClient(face_server, timeout=60, retries=0) as client:
        client.wait_until_serving(timeout=60)
        reply = client.check_liveness(image=gan)
        assert reply.liveness.checked and reply.liveness.checks
        assert reply.decision == (
            common_pb2.ACCEPT if reply.liveness.live else common_pb2.SPOOF_SUSPECTED
        )
        challenge = client.start_liveness_challenge()
        assert challenge.nonce and challenge.actions
        with pytest.raises(ValueError):
            client.check_liveness(image=gan, frames=[gan, gan])

        face = lfw("Roger_Federer", 13).read_bytes()
        client.enroll_face("sdk-dup-a", [face], tenant="sdk-dup")
        with pytest.raises(BioverifyClientError) as info:
            client.enroll_face(
                "sdk-dup-b",
                [lfw("Roger_Federer", 14).read_bytes()],
                tenant="sdk-dup",
                refuse_duplicates=True,
            )
        assert info.value.code == grpc.StatusCode.ALREADY_EXISTS
        verified = client.verify_face("sdk-dup-a", face, tenant="sdk-dup", require_liveness=True)
        assert verified.liveness.checked

        clips = [client.audio(p.read_bytes()) for p in speaker[:3]]
        client.enroll_voice("sdk-voice", clips[:2], tenant="sdk-dup")
        found = client.identify_voice(clips[2], tenant="sdk-dup")
        assert found.candidates and found.candidates[0].subject_id == "sdk-voice"
        for subject in ("sdk-dup-a", "sdk-voice"):
            client.delete_subject(subject, tenant="sdk-dup")

    async def async_liveness() -> None:
        async with AsyncBioverifyClient(face_server, timeout=60) as client:
            reply = await client.check_liveness(image=gan)
            assert reply.liveness.checked

    asyncio.run(async_liveness())


def test_identification_names_an_operating_point_sync_and_async(face_server: str) -> None:
    """identify_face / identify_voice judge the search at the operating point they name, as
    verify does; without one the service picks (and the reply names) the point."""
    faces = [lfw("Condoleezza_Rice", n).read_bytes() for n in (5, 6)]
    speech = sorted((DATA / "speaker" / "audio" / "libri_367").glob("*.flac"))
    with BioverifyClient(face_server, timeout=60, retries=0) as client:
        client.wait_until_serving(timeout=60)
        client.enroll_face("sdk-op", faces[:1], tenant="sdk-op")
        clips = [client.audio(p.read_bytes()) for p in speech[:3]]
        client.enroll_voice("sdk-op", clips[:2], tenant="sdk-op")
        default = client.identify_face(faces[1], tenant="sdk-op").operating_point
        assert default
        for point in ("fmr_1e-2", "fmr_1e-4"):
            face = client.identify_face(faces[1], tenant="sdk-op", operating_point=point)
            assert face.operating_point == point
            voice = client.identify_voice(clips[2], tenant="sdk-op", operating_point=point)
            assert voice.operating_point == point
        loose = client.identify_face(faces[1], tenant="sdk-op", operating_point="fmr_1e-2")
        strict = client.identify_face(faces[1], tenant="sdk-op", operating_point="fmr_1e-4")
        assert loose.threshold < strict.threshold
        with pytest.raises(BioverifyClientError) as info:
            client.identify_face(faces[1], tenant="sdk-op", operating_point="fmr_42")
        assert info.value.code == grpc.StatusCode.INVALID_ARGUMENT

        async def identify_async() -> tuple[str, str]:
            async with AsyncBioverifyClient(face_server, timeout=60) as aio:
                face = await aio.identify_face(
                    faces[1], tenant="sdk-op", operating_point="fmr_1e-2"
                )
                voice = await aio.identify_voice(
                    clips[2], tenant="sdk-op", operating_point="fmr_1e-2"
                )
                return face.operating_point, voice.operating_point

        assert asyncio.run(identify_async()) == ("fmr_1e-2", "fmr_1e-2")
        client.delete_subject("sdk-op", tenant="sdk-op")
