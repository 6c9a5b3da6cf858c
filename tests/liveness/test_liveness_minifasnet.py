"""MiniFASNet adapter: upstream crop geometry (golden values) and real-model decisions."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from bioverify.errors import ConfigurationError, InvalidInput
from bioverify.face.ports import DetectedFace, ImageBGR
from bioverify.liveness.minifasnet import (
    MiniFasNetPad,
    context_padding,
    crop_box,
    crop_face,
    softmax,
)
from tests.liveness.conftest import SAMPLES, read_image


def _face(x1: float, y1: float, x2: float, y2: float) -> DetectedFace:
    return DetectedFace(x1, y1, x2, y2, 0.9, np.zeros((5, 2), np.float32))


def test_crop_box_scales_around_the_centre() -> None:
    # 40x50 box centred at (120, 125) in a 400x300 image, x2.7 -> 108 x 135.
    assert crop_box((300, 400, 3), (100.0, 100.0, 40.0, 50.0), 2.7) == (66, 57, 174, 192)


def test_crop_box_shifts_inside_instead_of_clipping() -> None:
    # Sticks out left/top: shifted right/down keeping its 108 x 135 size.
    assert crop_box((300, 400, 3), (0.0, 10.0, 40.0, 50.0), 2.7) == (0, 0, 108, 135)
    # Sticks out right/bottom: shifted left/up to end at the last pixel.
    assert crop_box((300, 400, 3), (380.0, 280.0, 40.0, 50.0), 2.7) == (291, 164, 399, 299)


def test_crop_box_caps_the_scale_to_the_image() -> None:
    # A box filling the image: scale capped at (h-1)/box_h, the crop is the whole image.
    assert crop_box((200, 150, 3), (0.0, 0.0, 150.0, 200.0), 2.7) == (0, 0, 149, 199)


def test_context_padding_only_when_the_full_scale_box_does_not_fit() -> None:
    # Room for the 108 x 135 box: no padding, the upstream crop is kept.
    assert context_padding((300, 400, 3), (100.0, 100.0, 40.0, 50.0), 2.7) == (0, 0)
    assert context_padding((300, 400, 3), (0.0, 10.0, 40.0, 50.0), 2.7) == (0, 0)
    # A tight face crop: 150 x 200 box x2.7 = 405 x 540, padded until it fits.
    pad_y, pad_x = context_padding((200, 150, 3), (0.0, 0.0, 150.0, 200.0), 2.7)
    assert 200 + 2 * pad_y - 1 >= 540 and 150 + 2 * pad_x - 1 >= 405
    assert pad_y <= 172 and pad_x <= 130


def test_padded_crop_shows_the_face_at_the_trained_scale() -> None:
    # A bright face box filling a dark-bordered image: with context padding the face covers
    # about 1/2.7 of the crop's width; upstream (scale capped) it fills the crop.
    image = np.zeros((200, 150, 3), np.uint8)
    image[10:190, 10:140] = 200
    face = _face(10, 10, 140, 190)
    capped = crop_face(image, face, 2.7)
    padded = crop_face(image, face, 2.7, pad_context=True)
    assert padded.shape == (80, 80, 3)
    bright_cols = int((padded[40, :, 0] > 100).sum())
    assert abs(bright_cols - 80 * 130 / (140 * 2.7)) <= 4
    assert (capped[40, :, 0] > 100).sum() > 60


def test_crop_face_is_80x80_and_rejects_empty_boxes() -> None:
    image = np.random.default_rng(0).integers(0, 255, (120, 100, 3), dtype=np.uint8)
    assert crop_face(image, _face(30, 30, 60, 70), 2.7).shape == (80, 80, 3)
    with pytest.raises(InvalidInput):
        crop_face(image, _face(30, 30, 30, 70), 2.7)


def test_softmax_rows_sum_to_one() -> None:
    p = softmax(np.array([[1000.0, 0.0, -1000.0], [1.0, 2.0, 3.0]], np.float32))
    np.testing.assert_allclose(p.sum(axis=1), 1.0)
    assert p[0, 0] == pytest.approx(1.0)


@pytest.mark.parametrize(("name", "live"), [("F1", False), ("F2", False), ("T1", True)])
def test_upstream_samples(
    name: str,
    live: bool,
    minifasnet_v2: MiniFasNetPad,
    detect: Callable[[ImageBGR], DetectedFace],
) -> None:
    image = read_image(SAMPLES / f"image_{name}.jpg")
    probs = minifasnet_v2.probabilities(image, detect(image))
    assert probs.shape == (3,)
    assert probs.sum() == pytest.approx(1.0)
    score = minifasnet_v2.score(image, detect(image))
    if live:
        assert score > 0.99
    else:
        assert score < 0.05


def test_missing_and_wrong_models_fail_at_construction(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="not found"):
        MiniFasNetPad(tmp_path / "absent.onnx", scale=2.7)
    # A tiny valid ONNX graph with the wrong input size is refused by name.
    x = helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, 64, 64])
    y = helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 3, 64, 64])
    graph = helper.make_graph([helper.make_node("Identity", ["input"], ["output"])], "g", [x], [y])
    path = tmp_path / "wrong.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    with pytest.raises(ConfigurationError, match="not a MiniFASNet"):
        MiniFasNetPad(path, scale=2.7)
    with pytest.raises(ConfigurationError, match="scale"):
        MiniFasNetPad(path, scale=0.5)
