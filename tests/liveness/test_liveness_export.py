"""The MiniFASNet architecture written here: strict checkpoint loading and ONNX parity.

The only test that imports torch (as the export script is the only module that does).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from tests.liveness.conftest import MODELS, V2_ONNX, require

pytest.importorskip("torch")

from bioverify.liveness import export_minifasnet as export

V1SE_PTH = MODELS / "silent_face_antispoof" / "4_0_0_80x80_MiniFASNetV1SE.pth"
V2_PTH = MODELS / "silent_face_antispoof" / "2.7_80x80_MiniFASNetV2.pth"


def _batch() -> np.ndarray:
    return np.random.default_rng(7).uniform(0, 255, (3, 3, 80, 80)).astype(np.float32)


def test_v1se_exports_with_parity(tmp_path: Path) -> None:
    assert export.main([str(tmp_path), "--weights", str(require(V1SE_PTH))]) == 0
    out = tmp_path / "4_0_0_80x80_MiniFASNetV1SE.onnx"
    model = export.load_checkpoint(V1SE_PTH, "v1se")
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    got = session.run(None, {"input": _batch()})[0]
    np.testing.assert_allclose(got, export.torch_logits(model, _batch()), atol=1e-4)


def test_v2_architecture_matches_the_independent_onnx_export() -> None:
    """Our V2 definition with the official weights equals a third party's ONNX export."""
    model = export.load_checkpoint(require(V2_PTH), "v2")
    session = ort.InferenceSession(str(require(V2_ONNX)), providers=["CPUExecutionProvider"])
    reference = session.run(None, {"input": _batch()})[0]
    np.testing.assert_allclose(export.torch_logits(model, _batch()), reference, atol=1e-4)


def test_wrong_variant_fails_strict_loading() -> None:
    with pytest.raises(RuntimeError, match="state_dict"):
        export.load_checkpoint(require(V1SE_PTH), "v2")
    with pytest.raises(ValueError, match="unknown variant"):
        export.load_checkpoint(V1SE_PTH, "v3")
