"""Export MiniVision's MiniFASNet checkpoints (``.pth``) to ONNX: an offline admin script.

Usage::

    python -m bioverify.liveness.export_minifasnet OUT_DIR \\
        [--weights .../4_0_0_80x80_MiniFASNetV1SE.pth] [--variant v1se|v2]

The network is written here from the published facts of the architecture (Silent-Face-Anti-
Spoofing, ``MiniFASNet``): a pruned MobileFaceNet on an 80x80 BGR crop (raw 0-255 floats),
stem conv 3x3/2 + depthwise 3x3, four stages of inverted-residual blocks (1x1 expand, 3x3
depthwise, 1x1 linear projection; stride-2 transitions between stages), a 1x1 conv, a 5x5
global depthwise conv, a bias-free linear 512->128 with BatchNorm1d and a 3-class head
(class 1 = real). The SE variants add a squeeze-excitation gate (reduction 4, BatchNorm
after each 1x1) to the last block of each residual stage. Channel widths are the pruned
``keep`` lists below. Weights load with ``strict=True`` after removing DataParallel's
``module.`` prefix, so any mismatch with the checkpoint fails loudly.

This is the only module of bioverify that imports torch; the service never imports it.
"""

from __future__ import annotations

import argparse
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt
import torch
from torch import nn

# Pruned channel widths of the two published MiniFASNet families.
KEEP_V1 = (
    32, 32, 103, 103, 64, 13, 13, 64, 26, 26, 64, 13, 13, 64, 52, 52, 64, 231, 231, 128,
    154, 154, 128, 52, 52, 128, 26, 26, 128, 52, 52, 128, 26, 26, 128, 26, 26, 128, 308, 308,
    128, 26, 26, 128, 26, 26, 128, 512, 512,
)  # fmt: skip
KEEP_V2 = (
    32, 32, 103, 103, 64, 13, 13, 64, 13, 13, 64, 13, 13, 64, 13, 13, 64, 231, 231, 128,
    231, 231, 128, 52, 52, 128, 26, 26, 128, 77, 77, 128, 26, 26, 128, 26, 26, 128, 308, 308,
    128, 26, 26, 128, 26, 26, 128, 512, 512,
)  # fmt: skip

VARIANTS = {"v1se": (KEEP_V1, True), "v2": (KEEP_V2, False)}
INPUT_SIZE = 80
NUM_CLASSES = 3
EMBEDDING = 128
OPSET = 17


class ConvBnPrelu(nn.Module):
    """Bias-free conv, BatchNorm, per-channel PReLU (``conv``/``bn``/``prelu``)."""

    def __init__(
        self, c_in: int, c_out: int, kernel: int = 1, stride: int = 1, groups: int = 1
    ) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, kernel, stride, kernel // 2, groups=groups, bias=False)
        self.bn = nn.BatchNorm2d(c_out)
        self.prelu = nn.PReLU(c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.prelu(self.bn(self.conv(x)))  # type: ignore[no-any-return]


class ConvBn(nn.Module):
    """Bias-free conv and BatchNorm, no activation (linear bottleneck)."""

    def __init__(
        self, c_in: int, c_out: int, kernel: int = 1, stride: int = 1, groups: int = 1
    ) -> None:
        super().__init__()
        padding = kernel // 2 if kernel < 5 else 0
        self.conv = nn.Conv2d(c_in, c_out, kernel, stride, padding, groups=groups, bias=False)
        self.bn = nn.BatchNorm2d(c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(self.conv(x))  # type: ignore[no-any-return]


class SqueezeExcite(nn.Module):
    """Channel gate: global average, 1x1 conv + BN + ReLU, 1x1 conv + BN + sigmoid."""

    def __init__(self, channels: int, reduction: int = 4) -> None:
        super().__init__()
        hidden = channels // reduction
        self.fc1 = nn.Conv2d(channels, hidden, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(hidden)
        self.fc2 = nn.Conv2d(hidden, channels, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate = x.mean(dim=(2, 3), keepdim=True)
        gate = torch.relu(self.bn1(self.fc1(gate)))
        gate = torch.sigmoid(self.bn2(self.fc2(gate)))
        return x * gate


class InvertedBlock(nn.Module):
    """1x1 expand, 3x3 depthwise, 1x1 projection; optional SE gate and identity shortcut."""

    def __init__(
        self,
        widths: tuple[int, int, int, int],
        *,
        stride: int,
        residual: bool,
        se: bool = False,
    ) -> None:
        super().__init__()
        c_in, c_mid, c_dw, c_out = widths
        self.conv = ConvBnPrelu(c_in, c_mid)
        self.conv_dw = ConvBnPrelu(c_mid, c_dw, kernel=3, stride=stride, groups=c_mid)
        self.project = ConvBn(c_dw, c_out)
        self.residual = residual
        self.se_module = SqueezeExcite(c_out) if se else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.project(self.conv_dw(self.conv(x)))
        if not self.residual:
            return out
        if self.se_module is not None:
            out = self.se_module(out)
        return x + out


class Stage(nn.Module):
    """A run of residual blocks (``model.<i>``); the last carries the SE gate if asked."""

    def __init__(self, keep: Sequence[int], start: int, blocks: int, se: bool) -> None:
        super().__init__()
        layers = []
        for i in range(blocks):
            k = start + 3 * i
            widths = (keep[k], keep[k + 1], keep[k + 2], keep[k + 3])
            layers.append(InvertedBlock(widths, stride=1, residual=True, se=se and i == blocks - 1))
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)  # type: ignore[no-any-return]


class MiniFASNet(nn.Module):
    """MiniFASNet for 80x80 input; outputs 3-class logits (class 1 = real)."""

    def __init__(self, keep: Sequence[int], *, se: bool) -> None:
        super().__init__()
        k = keep
        self.conv1 = ConvBnPrelu(3, k[0], kernel=3, stride=2)
        self.conv2_dw = ConvBnPrelu(k[0], k[1], kernel=3, groups=k[1])
        self.conv_23 = InvertedBlock((k[1], k[2], k[3], k[4]), stride=2, residual=False)
        self.conv_3 = Stage(k, 4, 4, se)
        self.conv_34 = InvertedBlock((k[16], k[17], k[18], k[19]), stride=2, residual=False)
        self.conv_4 = Stage(k, 19, 6, se)
        self.conv_45 = InvertedBlock((k[37], k[38], k[39], k[40]), stride=2, residual=False)
        self.conv_5 = Stage(k, 40, 2, se)
        self.conv_6_sep = ConvBnPrelu(k[46], k[47])
        kernel = (INPUT_SIZE + 15) // 16
        self.conv_6_dw = ConvBn(k[47], k[48], kernel=kernel, groups=k[48])
        self.linear = nn.Linear(k[48], EMBEDDING, bias=False)
        self.bn = nn.BatchNorm1d(EMBEDDING)
        self.prob = nn.Linear(EMBEDDING, NUM_CLASSES, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv2_dw(self.conv1(x))
        out = self.conv_3(self.conv_23(out))
        out = self.conv_4(self.conv_34(out))
        out = self.conv_5(self.conv_45(out))
        out = self.conv_6_dw(self.conv_6_sep(out)).flatten(1)
        return self.prob(self.bn(self.linear(out)))  # type: ignore[no-any-return]


def load_checkpoint(weights: Path, variant: str) -> MiniFASNet:
    """Build ``variant`` and load ``weights`` strictly (``module.`` prefix removed)."""
    try:
        keep, se = VARIANTS[variant]
    except KeyError as exc:
        raise ValueError(f"unknown variant {variant!r}; valid: {', '.join(VARIANTS)}") from exc
    state = torch.load(weights, map_location="cpu", weights_only=True)
    state = {key.removeprefix("module."): value for key, value in state.items()}
    model = MiniFASNet(keep, se=se)
    model.load_state_dict(state, strict=True)
    model.eval()
    return model


def export_onnx(model: MiniFASNet, path: Path) -> None:
    """Write ``model`` as ONNX: input ``input`` [batch,3,80,80] BGR 0-255, output logits."""
    dummy = torch.zeros(1, 3, INPUT_SIZE, INPUT_SIZE)
    path.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # exporter deprecation chatter, not our concern
        torch.onnx.export(
            model,
            (dummy,),
            str(path),
            input_names=["input"],
            output_names=["output"],
            dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}},
            opset_version=OPSET,
            dynamo=False,
        )


def torch_logits(model: MiniFASNet, batch: npt.ArrayLike) -> npt.NDArray[np.float32]:
    """Reference logits from the torch model for an (n,3,80,80) float32 batch."""
    with torch.no_grad():
        out = model(torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32)))
    logits: npt.NDArray[np.float32] = out.numpy()
    return logits


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out_dir", type=Path, help="directory to write the .onnx file into")
    parser.add_argument(
        "--weights",
        type=Path,
        default=Path("../shared/models/silent_face_antispoof/4_0_0_80x80_MiniFASNetV1SE.pth"),
    )
    parser.add_argument("--variant", choices=sorted(VARIANTS), default="v1se")
    args = parser.parse_args(argv)
    model = load_checkpoint(args.weights, args.variant)
    out = args.out_dir / (args.weights.stem + ".onnx")
    export_onnx(model, out)

    import onnxruntime as ort

    rng = np.random.default_rng(0)
    batch = rng.uniform(0, 255, size=(4, 3, INPUT_SIZE, INPUT_SIZE)).astype(np.float32)
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    got = session.run(None, {"input": batch})[0]
    diff = float(np.abs(got - torch_logits(model, batch)).max())
    print(f"wrote {out} ({out.stat().st_size} B); max |onnx - torch| logits = {diff:.2e}")
    return 0 if diff < 1e-3 else 1


if __name__ == "__main__":
    raise SystemExit(main())
