"""End to end: a real gRPC server on loopback, real models, real LFW images."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import grpc
import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from PIL import Image

from bioverify.client import BioverifyClient, BioverifyClientError
from bioverify.packs import builtin_manifest_data, fitting_samples_digest
from bioverify.v1 import (
    common_pb2,
    face_pb2,
)
from tests.conftest import lfw

CLINTON = [lfw("Bill_Clinton", n) for n in (1, 3, 7, 17)]
RICE = [lfw("Condoleezza_Rice", n) for n in (1, 2, 5, 6)]
FEDERER = [lfw("Roger_Federer", n) for n in (8, 9, 13, 14)]
TWO_PEOPLE = lfw("Erika_Harold", 3)


@pytest.fixture(scope="module")
def client(face_server: str) -> Iterator[BioverifyClient]:
    with BioverifyClient(face_server, timeout=60.0, retries=0) as c:
        c.wait_until_serving(timeout=60)
        yield c


def read(path: Path) -> bytes:
    return path.read_bytes()


def encode(array: np.ndarray, fmt: str = "JPEG") -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format=fmt)
    return buf.getvalue()


def expect_error(code: grpc.StatusCode, fn: object, *args: object, **kwargs: object) -> str:
    with pytest.raises(BioverifyClientError) as info:
        fn(*args, **kwargs)  # type: ignore[operator]
    assert info.value.code == code, info.value
    message = info.value.message
    assert message and "Traceback" not in message and "/work/" not in message
    return message


# -- service shell ------------------------------------------------------------------------------
def test_health_reports_serving(face_server: str) -> None:
    with grpc.insecure_channel(face_server) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        for service in ("", "bioverify.v1.FaceService"):
            reply = stub.Check(health_pb2.HealthCheckRequest(service=service))
            assert reply.status == health_pb2.HealthCheckResponse.SERVING


def test_service_info_describes_models(client: BioverifyClient) -> None:
    info = client.service_info()
    assert info.api_version == "bioverify.v1"
    face = [m for m in info.models if m.role == "face-matcher"]
    assert len(face) == 1
    model = face[0]
    assert model.modality == common_pb2.FACE
    assert model.pack == "face-yunet-mobilefacenet"
    assert model.licence and model.embedding_dim == 128
    assert all(len(f.sha256) == 64 for f in model.files) and len(model.files) == 2
    defaults = [p for p in model.operating_points if p.is_default]
    assert len(defaults) == 1 and defaults[0].target_fmr == pytest.approx(1e-3)
    assert model.calibration.method == "platt" and model.calibration.slope > 0
    # the liveness pack it runs is described too (what it is and which files)
    (liveness,) = [m for m in info.models if m.role == "face-liveness"]
    assert liveness.pack == "face-liveness" and liveness.modality == common_pb2.FACE
    assert liveness.files and not liveness.operating_points
    shipped = builtin_manifest_data("face-liveness")
    assert shipped is not None  # and the service says it runs the fusion fitted as shipped
    assert liveness.fitting_samples_sha256 == fitting_samples_digest(shipped)
    assert info.runtime_versions["onnxruntime"]
    assert info.limits.max_image_bytes > 0


# -- CompareFaces -------------------------------------------------------------------------------
def test_compare_same_person_accepts(client: BioverifyClient) -> None:
    reply = client.compare_faces(read(CLINTON[0]), read(CLINTON[1]))
    m = reply.match
    assert m.decision == common_pb2.ACCEPT
    assert reply.decision == common_pb2.ACCEPT
    assert m.similarity >= m.threshold
    assert 0.5 < m.confidence <= 1.0
    assert m.operating_point == "fmr_1e-3" and m.target_fmr == pytest.approx(1e-3)
    assert m.model.startswith("onnx-arcface:MobileFaceNet:")
    for analysis in (reply.face_a, reply.face_b):
        assert analysis.image_width == 250 and analysis.image_height == 250
        assert analysis.faces_detected >= 1
        box = analysis.face
        assert 40 < box.width < 200 and 0 < box.detection_score <= 1
        assert len(box.landmarks) == 5
        assert box.landmarks[0].x < box.landmarks[1].x  # eyes in image order
        assert analysis.quality.acceptable and analysis.quality.inter_eye_distance_px > 20


def test_compare_different_people_rejects(client: BioverifyClient) -> None:
    reply = client.compare_faces(read(CLINTON[0]), read(RICE[0]))
    assert reply.match.decision == common_pb2.REJECT
    assert reply.match.confidence < 0.5
    assert reply.match.similarity < reply.match.threshold


def test_confidence_is_monotonic_in_similarity(client: BioverifyClient) -> None:
    replies = [
        client.compare_faces(read(a), read(b))
        for a, b in [(CLINTON[0], CLINTON[2]), (CLINTON[0], RICE[1]), (FEDERER[0], FEDERER[1])]
    ]
    ordered = sorted(replies, key=lambda r: r.match.similarity)
    confidences = [r.match.confidence for r in ordered]
    assert confidences == sorted(confidences)


def test_operating_point_can_be_chosen_per_request(client: BioverifyClient) -> None:
    strict = client.compare_faces(read(CLINTON[0]), read(CLINTON[1]), operating_point="fmr_1e-4")
    lax = client.compare_faces(read(CLINTON[0]), read(CLINTON[1]), operating_point="fmr_1e-2")
    assert strict.match.threshold > lax.match.threshold
    assert strict.match.similarity == pytest.approx(lax.match.similarity, abs=1e-6)
    message = expect_error(
        grpc.StatusCode.INVALID_ARGUMENT,
        client.compare_faces,
        read(CLINTON[0]),
        read(CLINTON[1]),
        operating_point="fmr_0.5",
    )
    assert "fmr_1e-3" in message  # lists the valid ones


def test_exif_orientation_is_applied(client: BioverifyClient) -> None:
    image = Image.open(CLINTON[1])
    rotated = image.transpose(Image.Transpose.ROTATE_90)  # stored sideways (90 CCW)...
    exif = Image.Exif()
    exif[0x0112] = 6  # ...with "rotate 90 CW to display" in EXIF
    buf = io.BytesIO()
    rotated.save(buf, format="JPEG", exif=exif.tobytes(), quality=95)
    reply = client.compare_faces(read(CLINTON[0]), buf.getvalue())
    assert reply.match.decision == common_pb2.ACCEPT


def test_a_large_photo_is_analysed_shrunk_and_reported_in_its_own_pixels(
    client: BioverifyClient,
) -> None:
    """A 3000 px photo is shrunk to the 2048 px working side; the reply's box and sizes are
    still in the sent photo's pixels, 12 times those found in the 250 px original."""
    original = Image.open(CLINTON[1]).convert("RGB")
    large = original.resize((3000, 3000), Image.Resampling.BICUBIC)
    reply = client.compare_faces(read(CLINTON[1]), encode(np.asarray(large)))
    assert reply.match.decision == common_pb2.ACCEPT and reply.match.similarity > 0.8
    small, big = reply.face_a, reply.face_b
    assert (big.image_width, big.image_height) == (3000, 3000)
    for a, b in (
        (small.face.x, big.face.x),
        (small.face.width, big.face.width),
        (small.face.landmarks[2].y, big.face.landmarks[2].y),
        (small.quality.inter_eye_distance_px, big.quality.inter_eye_distance_px),
    ):
        assert b == pytest.approx(12 * a, rel=0.08)


def test_png_and_webp_are_accepted(client: BioverifyClient) -> None:
    array = np.asarray(Image.open(CLINTON[1]).convert("RGB"))
    for fmt in ("PNG", "WEBP"):
        reply = client.compare_faces(read(CLINTON[0]), encode(array, fmt))
        assert reply.match.decision == common_pb2.ACCEPT


# -- bad input ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "payload, words",
    [
        (b"", "empty"),
        (b"this is not an image at all", "JPEG"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, ""),
        (bytes(np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8)), ""),
    ],
    ids=["empty", "text", "broken-png", "random-bytes"],
)
def test_corrupt_payloads_are_invalid_argument(
    client: BioverifyClient, payload: bytes, words: str
) -> None:
    message = expect_error(
        grpc.StatusCode.INVALID_ARGUMENT, client.compare_faces, read(CLINTON[0]), payload
    )
    assert message.startswith("image_b")
    assert words in message
    # every RPC names a bad image the same way, an empty one included
    for call in (
        lambda: client.compare_faces(read(CLINTON[0]), payload),
        lambda: client.identify_face(payload),
        lambda: client.check_liveness(image=payload),
    ):
        with pytest.raises(BioverifyClientError) as info:
            call()
        assert info.value.reason == "INVALID_IMAGE", info.value


def test_truncated_jpeg_is_invalid_argument(client: BioverifyClient) -> None:
    data = read(CLINTON[1])
    expect_error(
        grpc.StatusCode.INVALID_ARGUMENT, client.compare_faces, data[: len(data) // 3], data
    )


def test_no_face_is_invalid_argument(client: BioverifyClient) -> None:
    blank = encode(np.full((300, 300, 3), 128, dtype=np.uint8))
    message = expect_error(
        grpc.StatusCode.INVALID_ARGUMENT, client.compare_faces, blank, read(CLINTON[0])
    )
    assert "no face" in message


def test_several_faces_is_invalid_argument(client: BioverifyClient) -> None:
    a = np.asarray(Image.open(CLINTON[0]).convert("RGB"))
    b = np.asarray(Image.open(RICE[0]).convert("RGB"))
    side_by_side = encode(np.concatenate([a, b], axis=1))
    message = expect_error(
        grpc.StatusCode.INVALID_ARGUMENT, client.compare_faces, side_by_side, read(CLINTON[0])
    )
    assert "faces" in message


def test_huge_pixel_count_is_resource_exhausted(client: BioverifyClient) -> None:
    # 8000 x 5000 = 40 MP of flat colour: a tiny file that would decode to 120 MB.
    bomb = io.BytesIO()
    Image.new("L", (8000, 5000), 200).save(bomb, format="PNG", optimize=True)
    assert len(bomb.getvalue()) < 1_000_000
    message = expect_error(
        grpc.StatusCode.RESOURCE_EXHAUSTED, client.compare_faces, bomb.getvalue(), read(CLINTON[0])
    )
    assert "pixels" in message


def test_absurd_aspect_ratio_is_invalid_argument(client: BioverifyClient) -> None:
    strip = encode(np.full((40, 4000, 3), 90, dtype=np.uint8), "PNG")
    expect_error(grpc.StatusCode.INVALID_ARGUMENT, client.compare_faces, strip, read(CLINTON[0]))


def test_oversized_message_is_resource_exhausted(client: BioverifyClient) -> None:
    huge = b"\xff\xd8\xff" + b"\x00" * (9 * 1024 * 1024)  # over the 8 MiB message limit
    with pytest.raises(BioverifyClientError) as info:
        client.compare_faces(huge, read(CLINTON[0]))
    assert info.value.code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert info.value.reason == "TOO_LARGE"  # gRPC's own refusal, named like the service's
    assert "larger than max" in info.value.message


def test_server_stays_up_after_bad_input(client: BioverifyClient) -> None:
    for junk in (b"", b"\x00" * 100, b"GIF89a....", b"RIFF\x00\x00\x00\x00WEBPVP8 "):
        with pytest.raises(BioverifyClientError):
            client.compare_faces(junk, junk)
    assert client.compare_faces(read(CLINTON[0]), read(CLINTON[2])).match.decision == (
        common_pb2.ACCEPT
    )


# -- enroll / verify / subjects -----------------------------------------------------------------
def test_enroll_verify_and_erase(client: BioverifyClient) -> None:
    blank = encode(np.full((300, 300, 3), 30, dtype=np.uint8))
    reply = client.enroll_face(
        "clinton-42", [read(CLINTON[0]), read(CLINTON[1]), blank], metadata={"branch": "NYC"}
    )
    assert reply.accepted_count == 2 and reply.rejected_count == 1
    assert [s.accepted for s in reply.samples] == [True, True, False]
    assert reply.samples[2].reasons[0].code == "NO_FACE"
    assert reply.template.sample_count == 2 and reply.template.modality == common_pb2.FACE

    genuine = client.verify_face("clinton-42", read(CLINTON[3]))
    assert genuine.decision == common_pb2.ACCEPT and genuine.match.confidence > 0.5
    impostor = client.verify_face("clinton-42", read(FEDERER[0]))
    assert impostor.decision == common_pb2.REJECT and impostor.match.confidence < 0.5

    subject = client.get_subject("clinton-42")
    assert subject.metadata["branch"] == "NYC"
    assert subject.templates[0].sample_count == 2

    # extending the template adds samples
    more = client.enroll_face("clinton-42", [read(CLINTON[2])])
    assert more.template.sample_count == 3
    # enrolling the same bytes again (a client retry, a resumed bulk run) adds nothing
    retried = client.enroll_face("clinton-42", [read(CLINTON[2]), read(CLINTON[0])])
    assert retried.accepted_count == 2 and retried.template.sample_count == 3

    deleted = client.delete_subject("clinton-42")
    assert deleted.templates_deleted == 1
    expect_error(grpc.StatusCode.NOT_FOUND, client.verify_face, "clinton-42", read(CLINTON[3]))
    expect_error(grpc.StatusCode.NOT_FOUND, client.get_subject, "clinton-42")


def test_enroll_with_only_bad_images_writes_nothing(client: BioverifyClient) -> None:
    blank = encode(np.full((300, 300, 3), 30, dtype=np.uint8))
    reply = client.enroll_face("nobody-1", [blank, b"garbage"])
    assert reply.accepted_count == 0 and reply.rejected_count == 2
    assert {r.code for s in reply.samples for r in s.reasons} == {"NO_FACE", "INVALID_IMAGE"}
    assert not reply.HasField("template")
    assert [r.code for r in reply.reasons] == ["NO_SAMPLE_ACCEPTED"]
    expect_error(grpc.StatusCode.NOT_FOUND, client.get_subject, "nobody-1")


def test_enroll_rejects_poor_quality_with_reasons(client: BioverifyClient) -> None:
    import cv2

    sharp = np.asarray(Image.open(RICE[0]).convert("RGB"))
    blurred = cv2.GaussianBlur(sharp, (0, 0), 6)
    dark = (sharp * 0.08).astype(np.uint8)
    reply = client.enroll_face("rice-q", [encode(blurred), encode(dark), read(RICE[1])])
    codes = [{r.code for r in s.reasons} for s in reply.samples]
    assert "BLURRED" in codes[0]
    assert "UNDEREXPOSED" in codes[1] or "NO_FACE" in codes[1]
    assert reply.samples[2].accepted and reply.accepted_count == 1
    client.delete_subject("rice-q")


@pytest.mark.parametrize(
    "subject_id",
    ["", "bad\x00id", "tab\tid", "x" * 200, " padded "],
    ids=["empty", "nul", "tab", "too-long", "padded"],
)
def test_bad_subject_ids_are_invalid_argument(client: BioverifyClient, subject_id: str) -> None:
    expect_error(
        grpc.StatusCode.INVALID_ARGUMENT, client.enroll_face, subject_id, [read(CLINTON[0])]
    )
    expect_error(grpc.StatusCode.INVALID_ARGUMENT, client.verify_face, subject_id, read(CLINTON[0]))


def test_enroll_with_no_images_or_too_many(client: BioverifyClient) -> None:
    expect_error(grpc.StatusCode.INVALID_ARGUMENT, client.enroll_face, "x1", [])
    too_many = [read(CLINTON[0])] * 9  # the test server allows 8
    expect_error(grpc.StatusCode.RESOURCE_EXHAUSTED, client.enroll_face, "x1", too_many)
    expect_error(grpc.StatusCode.NOT_FOUND, client.get_subject, "x1")


def test_verify_unknown_subject_is_not_found(client: BioverifyClient) -> None:
    message = expect_error(
        grpc.StatusCode.NOT_FOUND, client.verify_face, "no-such-person", read(CLINTON[0])
    )
    assert "no-such-person" in message


def test_list_subjects_paginates(client: BioverifyClient) -> None:
    ids = [f"page-{i:02d}" for i in range(5)]
    for sid in ids:
        client.enroll_face(sid, [read(FEDERER[0])], tenant="paging")
    first = client.list_subjects(tenant="paging", page_size=2)
    assert [s.subject_id for s in first.subjects] == ids[:2] and first.next_page_token
    listed = [s.subject_id for s in client.iter_subjects(tenant="paging", page_size=2)]
    assert listed == ids
    default = client.list_subjects(tenant="default", page_size=100).subjects
    assert not {s.subject_id for s in default} & set(ids)  # tenants are separate lists
    expect_error(
        grpc.StatusCode.INVALID_ARGUMENT, client.list_subjects, tenant="paging", page_token="%%"
    )
    for sid in ids:
        client.delete_subject(sid, tenant="paging")
    assert list(client.iter_subjects(tenant="paging")) == []


def test_tenants_are_isolated(client: BioverifyClient) -> None:
    client.enroll_face("shared-name", [read(FEDERER[0])], tenant="bank-a")
    expect_error(
        grpc.StatusCode.NOT_FOUND,
        client.verify_face,
        "shared-name",
        read(FEDERER[1]),
        tenant="bank-b",
    )
    assert client.verify_face("shared-name", read(FEDERER[1]), tenant="bank-a").decision == (
        common_pb2.ACCEPT
    )
    client.delete_subject("shared-name", tenant="bank-a")
    expect_error(grpc.StatusCode.INVALID_ARGUMENT, client.get_subject, "x", tenant="bad tenant!")


def test_require_liveness_reports_the_checks(client: BioverifyClient) -> None:
    request = face_pb2.CompareFacesRequest(
        image_a=read(CLINTON[0]),
        image_b=read(CLINTON[1]),
        policy=common_pb2.Policy(require_liveness=True, observe_only=True),
    )
    reply = client.face.CompareFaces(request)
    for report in (reply.liveness_a, reply.liveness_b):
        assert report.checked and report.observe_only and 0.0 <= report.score <= 1.0
        names = {c.name for c in report.checks}
        assert len(names) >= 3 and all(c.detail for c in report.checks)
    # observe mode never blocks: the decision is the match decision
    assert reply.decision in (common_pb2.ACCEPT, common_pb2.RETRY)
    plain = client.compare_faces(read(CLINTON[0]), read(CLINTON[1]))
    assert not plain.liveness_a.checked  # not requested: not run
