"""Face embedders: real MobileFaceNet and dlib ResNet on LFW, and the generic ONNX plumbing
on tiny generated graphs (channel order, normalisation, fixed and dynamic batch)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from bioverify.errors import ConfigurationError
from bioverify.face.align import ARCFACE_TEMPLATE_112
from bioverify.face.embedder_dlib import DlibResnetEmbedder
from bioverify.face.embedder_onnx import (
    INSIGHTFACE_ARCFACE,
    MOBILEFACENET_FOAMLIU,
    OnnxFaceEmbedder,
    l2_normalize,
)
from bioverify.face.ports import DetectedFace, FaceDetector, FaceEmbedder
from bioverify.face.quality import select_primary_face
from tests.face.face_assets import MOBILEFACENET, lfw_image, require

# Two photos each of four people (single-subject LFW images).
PEOPLE = [
    ("Ben_Curtis", 1, 3),
    ("George_Brumley", 1, 2),
    ("Jiang_Zemin", 2, 3),
    ("Jennifer_Aniston", 2, 7),
]

# --- tiny generated ONNX recognisers -----------------------------------------------------

DIM = 16
WEIGHTS = np.zeros((3, DIM), np.float32)
WEIGHTS[0, 0] = WEIGHTS[1, 1] = WEIGHTS[2, 2] = 1.0  # first three outputs = channel means
WEIGHTS[:, 3] = 1.0  # fourth output = sum of the channel means


def tiny_model(
    path: Path, *, batch: int | str = "batch", size: int = 112, nhwc: bool = False
) -> Path:
    """[N,3,size,size] -> GlobalAveragePool -> Flatten -> MatMul -> [N,16].

    With ``nhwc`` the graph takes [N,size,size,3] and transposes it first.
    """
    shape: list[int | str] = [batch, size, size, 3] if nhwc else [batch, 3, size, size]
    nodes = [
        helper.make_node("GlobalAveragePool", ["nchw"], ["pooled"]),
        helper.make_node("Flatten", ["pooled"], ["flat"], axis=1),
        helper.make_node("MatMul", ["flat", "weights"], ["embedding"]),
    ]
    if nhwc:
        nodes.insert(0, helper.make_node("Transpose", ["data"], ["nchw"], perm=[0, 3, 1, 2]))
    else:
        nodes.insert(0, helper.make_node("Identity", ["data"], ["nchw"]))
    graph = helper.make_graph(
        nodes,
        "tiny_recogniser",
        [helper.make_tensor_value_info("data", TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, [batch, DIM])],
        initializer=[numpy_helper.from_array(WEIGHTS, "weights")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=9)
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def solid_crop(bgr: tuple[int, int, int], size: int = 112) -> np.ndarray:
    crop = np.empty((size, size, 3), np.uint8)
    crop[:] = bgr
    return crop


def expected(channel_values: list[float]) -> np.ndarray:
    raw = np.asarray(channel_values, np.float32) @ WEIGHTS
    return raw / np.linalg.norm(raw)


def plain(color: str) -> dict[str, Any]:
    return {"color": color, "scale": 1.0, "mean": (0.0, 0.0, 0.0), "std": (1.0, 1.0, 1.0)}


def count_runs(embedder: OnnxFaceEmbedder, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Record the batch size of every session call."""
    session = embedder._session
    real_run = session.run
    calls: list[int] = []

    def run(names: Any, feeds: dict[str, np.ndarray]) -> Any:
        calls.append(next(iter(feeds.values())).shape[0])
        return real_run(names, feeds)

    monkeypatch.setattr(session, "run", run)
    return calls


def test_bgr_order_feeds_channels_as_stored(tmp_path: Path) -> None:
    embedder = OnnxFaceEmbedder(tiny_model(tmp_path / "m.onnx"), **plain("bgr"))
    out = embedder.embed([solid_crop((10, 20, 30))])
    assert out.shape == (1, DIM) and out.dtype == np.float32
    assert np.allclose(out[0], expected([10, 20, 30]), atol=1e-6)


def test_rgb_order_swaps_channels(tmp_path: Path) -> None:
    embedder = OnnxFaceEmbedder(tiny_model(tmp_path / "m.onnx"), **plain("rgb"))
    assert np.allclose(
        embedder.embed([solid_crop((10, 20, 30))])[0], expected([30, 20, 10]), atol=1e-6
    )


def test_mobilefacenet_normalisation(tmp_path: Path) -> None:
    embedder = OnnxFaceEmbedder(tiny_model(tmp_path / "m.onnx"), **MOBILEFACENET_FOAMLIU)
    b, g, r = 40, 128, 220
    mean, std = MOBILEFACENET_FOAMLIU["mean"], MOBILEFACENET_FOAMLIU["std"]
    want = [(v / 255.0 - m) / s for v, m, s in zip((r, g, b), mean, std, strict=True)]
    assert np.allclose(embedder.embed([solid_crop((b, g, r))])[0], expected(want), atol=1e-4)


def test_insightface_normalisation(tmp_path: Path) -> None:
    embedder = OnnxFaceEmbedder(tiny_model(tmp_path / "m.onnx"), **INSIGHTFACE_ARCFACE)
    b, g, r = 0, 100, 255
    want = [(v - 127.5) / 127.5 for v in (r, g, b)]
    assert np.allclose(embedder.embed([solid_crop((b, g, r))])[0], expected(want), atol=1e-5)


def test_dynamic_batch_runs_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    embedder = OnnxFaceEmbedder(tiny_model(tmp_path / "m.onnx"), **plain("bgr"))
    assert not embedder.fixed_batch and embedder.dim == DIM
    calls = count_runs(embedder, monkeypatch)
    colours = [(i * 10, 5, 200 - i * 10) for i in range(5)]
    out = embedder.embed([solid_crop(c) for c in colours])
    assert calls == [5]
    for row, colour in zip(out, colours, strict=True):
        assert np.allclose(row, expected(list(colour)), atol=1e-6)


@pytest.mark.parametrize(("batch", "runs"), [(1, [1, 1, 1, 1, 1]), (2, [2, 2, 2])])
def test_fixed_batch_is_chunked_and_padded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, batch: int, runs: list[int]
) -> None:
    embedder = OnnxFaceEmbedder(tiny_model(tmp_path / "m.onnx", batch=batch), **plain("bgr"))
    assert embedder.fixed_batch
    calls = count_runs(embedder, monkeypatch)
    colours = [(i * 10, 5, 200 - i * 10) for i in range(5)]
    out = embedder.embed([solid_crop(c) for c in colours])
    assert calls == runs
    assert out.shape == (5, DIM)
    for row, colour in zip(out, colours, strict=True):
        assert np.allclose(row, expected(list(colour)), atol=1e-6)


def test_empty_and_malformed_crops(tmp_path: Path) -> None:
    embedder = OnnxFaceEmbedder(tiny_model(tmp_path / "m.onnx"), **plain("bgr"))
    assert embedder.embed([]).shape == (0, DIM)
    with pytest.raises(ValueError):
        embedder.embed([np.zeros((100, 100, 3), np.uint8)])
    with pytest.raises(ValueError):
        embedder.embed([np.zeros((112, 112, 3), np.float32)])


def test_other_input_size_aligns_to_the_scaled_template(tmp_path: Path) -> None:
    embedder = OnnxFaceEmbedder(
        tiny_model(tmp_path / "m.onnx", size=128), input_size=128, **plain("bgr")
    )
    face = DetectedFace(0, 0, 112, 112, 0.9, ARCFACE_TEMPLATE_112.astype(np.float32))
    image = np.full((112, 112, 3), 90, np.uint8)
    crop = embedder.align(image, face)
    assert crop.shape == (128, 128, 3)
    assert embedder.embed([crop]).shape == (1, DIM)


@pytest.mark.parametrize(
    ("make", "kwargs", "match"),
    [
        (lambda p: p / "missing.onnx", plain("bgr"), "not found"),
        (lambda p: tiny_model(p / "m.onnx"), {**plain("bgr"), "input_size": 128}, "configured 128"),
        (lambda p: tiny_model(p / "m.onnx", nhwc=True), plain("bgr"), "NCHW"),
        (lambda p: tiny_model(p / "m.onnx"), {**plain("bgr"), "color": "yuv"}, "color"),
        (lambda p: tiny_model(p / "m.onnx"), {**plain("bgr"), "std": (1.0, 0.0, 1.0)}, "positive"),
        (lambda p: tiny_model(p / "m.onnx"), {**plain("bgr"), "mean": (1.0,)}, "3 values"),
    ],
    ids=["missing", "size", "nhwc", "color", "std", "mean"],
)
def test_configuration_errors(
    tmp_path: Path, make: Callable[[Path], Path], kwargs: dict[str, Any], match: str
) -> None:
    with pytest.raises(ConfigurationError, match=match):
        OnnxFaceEmbedder(make(tmp_path), **kwargs)


def test_garbage_model_file(tmp_path: Path) -> None:
    path = tmp_path / "garbage.onnx"
    path.write_bytes(b"\x08\x01garbage")
    with pytest.raises(ConfigurationError, match="cannot load"):
        OnnxFaceEmbedder(path, **plain("bgr"))


def test_l2_normalize() -> None:
    out = l2_normalize(np.array([[3.0, 4.0], [0.0, 0.0]], np.float32))
    assert np.allclose(out, [[0.6, 0.8], [0.0, 0.0]])


# --- real recognisers on LFW -------------------------------------------------------------


def embed_people(
    detector: FaceDetector, embedder: FaceEmbedder
) -> dict[tuple[str, int], np.ndarray]:
    out = {}
    for name, a, b in PEOPLE:
        for n in (a, b):
            image = lfw_image(name, n)
            face, _ = select_primary_face(detector.detect(image), image.shape)
            out[(name, n)] = embedder.embed([embedder.align(image, face)])[0]
    return out


def assert_separates_people(vectors: dict[tuple[str, int], np.ndarray]) -> None:
    same = [float(vectors[(n, a)] @ vectors[(n, b)]) for n, a, b in PEOPLE]
    keys = list(vectors)
    different = [
        float(vectors[x] @ vectors[y])
        for i, x in enumerate(keys)
        for y in keys[i + 1 :]
        if x[0] != y[0]
    ]
    assert min(same) > max(different), (same, max(different))


def test_mobilefacenet_separates_people(
    get_detector: Callable[[str], FaceDetector], mobilefacenet: OnnxFaceEmbedder
) -> None:
    assert mobilefacenet.dim == 128 and mobilefacenet.fixed_batch
    for detector in ("yunet", "scrfd-500m"):
        assert_separates_people(embed_people(get_detector(detector), mobilefacenet))


def test_mobilefacenet_unit_norm_deterministic_and_batch_consistent(
    yunet: FaceDetector, mobilefacenet: OnnxFaceEmbedder
) -> None:
    crops = []
    for name, n, _ in PEOPLE[:3]:
        image = lfw_image(name, n)
        face, _ = select_primary_face(yunet.detect(image), image.shape)
        crop = mobilefacenet.align(image, face)
        assert crop.shape == (112, 112, 3) and crop.dtype == np.uint8
        crops.append(crop)
    batch = mobilefacenet.embed(crops)
    assert batch.shape == (3, 128) and batch.dtype == np.float32
    assert np.allclose(np.linalg.norm(batch, axis=1), 1.0, atol=1e-5)
    assert np.array_equal(batch, mobilefacenet.embed(crops))
    singles = np.concatenate([mobilefacenet.embed([c]) for c in crops])
    assert np.array_equal(batch, singles)


def test_dlib_resnet_separates_people(
    get_detector: Callable[[str], FaceDetector], dlib_embedder: DlibResnetEmbedder
) -> None:
    assert dlib_embedder.dim == 128
    assert_separates_people(embed_people(get_detector("dlib-hog"), dlib_embedder))


def test_dlib_resnet_accepts_other_detectors_and_is_deterministic(
    yunet: FaceDetector, dlib_embedder: DlibResnetEmbedder
) -> None:
    image = lfw_image("Ben_Curtis", 1)
    face, _ = select_primary_face(yunet.detect(image), image.shape)
    chip = dlib_embedder.align(image, face)
    assert chip.shape == (150, 150, 3) and chip.dtype == np.uint8
    assert np.array_equal(chip, dlib_embedder.align(image, face))
    # The chip is BGR like every crop: its mean colour matches the face region's.
    region = image[int(face.y1) : int(face.y2), int(face.x1) : int(face.x2)].reshape(-1, 3)
    assert np.argmax(chip.reshape(-1, 3).mean(0)) == np.argmax(region.mean(0))
    first = dlib_embedder.embed([chip, chip])
    assert first.shape == (2, 128)
    assert np.allclose(np.linalg.norm(first, axis=1), 1.0, atol=1e-5)
    assert np.allclose(first[0], first[1]) and np.array_equal(
        first, dlib_embedder.embed([chip, chip])
    )
    assert dlib_embedder.embed([]).shape == (0, 128)
    with pytest.raises(ValueError):
        dlib_embedder.embed([np.zeros((112, 112, 3), np.uint8)])


def test_dlib_configuration_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="not found"):
        DlibResnetEmbedder(model_path=tmp_path / "missing.dat")
    with pytest.raises(ConfigurationError, match="150"):
        DlibResnetEmbedder(chip_size=112)


def test_mobilefacenet_file_is_the_real_one() -> None:
    assert require(MOBILEFACENET).stat().st_size == 3_998_070


def test_thread_setting(tmp_path: Path) -> None:
    embedder = OnnxFaceEmbedder(tiny_model(tmp_path / "m.onnx"), threads=2, **plain("bgr"))
    options = embedder._session.get_session_options()
    assert (options.intra_op_num_threads, options.inter_op_num_threads) == (2, 1)
    assert embedder._session.get_providers() == ["CPUExecutionProvider"]
