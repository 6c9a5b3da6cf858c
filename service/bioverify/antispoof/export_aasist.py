"""Export the official AASIST checkpoints to ONNX, and build the ``voice-antispoof`` pack.

The ONNX file cannot be shipped (the checkpoint is a separate download and the model
directory is read-only), so the pack is *built*: ``build_pack(model_dir, out_dir)`` checks
the checkpoint's sha256, loads it strictly into :mod:`bioverify.antispoof.aasist_arch`,
exports it, verifies parity with onnxruntime, and writes an imported pack directory
``<out_dir>/voice-antispoof/`` (``bioverify-pack.json`` + ``aasist/AASIST.onnx``) that
overrides the built-in manifest of the same id. ``bioverify-admin models build
voice-antispoof`` is meant to call it with the data directory's packs folder.

The graph has a fixed input length (64600 samples, upstream's 4.04 s) and a dynamic batch:
graph pooling keeps ``int(n_nodes * ratio)`` nodes, a Python-side rounding that a dynamic
length would have to reproduce in float32 inside the graph, where ``0.7 * 30`` can round the
other way. The detector covers longer clips with several windows in one batch instead.

This module imports torch (at call time): an admin/build-time tool, not part of serving.

Usage::

    python -m bioverify.antispoof.export_aasist CHECKPOINT CONFIG OUTPUT.onnx
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import tempfile
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from bioverify.errors import ConfigurationError
from bioverify.packs import MANIFEST_NAME, sha256_file

if TYPE_CHECKING:
    from bioverify.antispoof.aasist_arch import Aasist

logger = logging.getLogger(__name__)

PACK_ID = "voice-antispoof"
INPUT_NAME = "waveform"
OUTPUT_NAME = "logits"
OPSET = 17
PARITY_TOLERANCE = 1e-4


@dataclass(frozen=True)
class ExportReport:
    path: Path
    sha256: str
    size_bytes: int
    max_abs_diff: float
    parameters: int


def export_onnx(model: Aasist, output: Path, *, opset: int = OPSET) -> Path:
    """Trace ``model`` (eval mode) to ONNX with a fixed input length and a dynamic batch."""
    import torch
    from torch.jit import TracerWarning  # type: ignore[attr-defined]

    length = model.config.nb_samp
    dummy = torch.zeros(1, length, dtype=torch.float32)
    output.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        # The TorchScript exporter announces its own deprecation (and torch.onnx internals
        # theirs); the dynamo exporter needs onnxscript, which is not a dependency. Only
        # deprecation notices about torch.onnx itself are silenced.
        warnings.filterwarnings(
            "ignore", message=r"You are using the legacy TorchScript", category=DeprecationWarning
        )
        warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"torch\.onnx\.")
        # Graph pooling's node counts become constants: intended, the input length is fixed.
        warnings.filterwarnings(
            "ignore",
            message=r"Converting a tensor to a Python integer",
            category=TracerWarning,
        )
        torch.onnx.export(
            model,
            (dummy,),
            str(output),
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
            opset_version=opset,
            do_constant_folding=True,
            dynamo=False,
        )
    _add_metadata(output, model)
    return output


def _add_metadata(path: Path, model: Aasist) -> None:
    import onnx

    proto = onnx.load(str(path))
    meta = {
        "framework": "aasist",
        "sample_rate": "16000",
        "nb_samp": str(model.config.nb_samp),
        "bonafide_index": "1",
        "output": "logits [batch, 2]: index 0 spoof, index 1 bona fide",
        "input": "raw waveform [batch, nb_samp] float32 in [-1, 1], no normalisation",
        "license": "MIT (NAVER Corp., clovaai/aasist); trained on ASVspoof 2019 LA",
        "exporter": "bioverify.antispoof.export_aasist",
    }
    del proto.metadata_props[:]
    for key, value in meta.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.checker.check_model(proto)
    onnx.save(proto, str(path))


def parity(
    model: Aasist, onnx_path: Path, *, batches: Sequence[int] = (2,), seed: int = 0
) -> float:
    """Largest absolute logit difference between torch and onnxruntime on random waveforms."""
    import onnxruntime as ort
    import torch

    rng = np.random.default_rng(seed)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    session = ort.InferenceSession(str(onnx_path), opts, providers=["CPUExecutionProvider"])
    worst = 0.0
    for batch in batches:
        wave = (0.1 * rng.standard_normal((batch, model.config.nb_samp))).astype(np.float32)
        with torch.no_grad():
            expected = model(torch.from_numpy(wave)).numpy()
        got = session.run([OUTPUT_NAME], {INPUT_NAME: wave})[0]
        worst = max(worst, float(np.max(np.abs(np.asarray(got) - expected))))
    return worst


def export_checkpoint(checkpoint: Path, config: Path, output: Path) -> ExportReport:
    """Load strictly, export, check parity (raises when above tolerance)."""
    from bioverify.antispoof.aasist_arch import load_aasist

    model = load_aasist(checkpoint, config)
    export_onnx(model, output)
    diff = parity(model, output)
    if not diff < PARITY_TOLERANCE:
        raise RuntimeError(f"ONNX parity failed: max abs diff {diff:.3g} ≥ {PARITY_TOLERANCE}")
    return ExportReport(
        path=output,
        sha256=sha256_file(output),
        size_bytes=output.stat().st_size,
        max_abs_diff=diff,
        parameters=sum(p.numel() for p in model.parameters()),
    )


def builtin_manifest() -> dict[str, Any]:
    text = (resources.files("bioverify") / "packs" / f"{PACK_ID}.json").read_text("utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


def build_pack(model_dir: Path, out_dir: Path) -> Path:
    """Build the ``voice-antispoof`` pack from the checkpoint in ``model_dir``.

    Writes ``<out_dir>/voice-antispoof/`` (manifest + ONNX file, as an imported pack) and
    returns that directory. The checkpoint and config named by the built-in manifest's
    ``build`` section are checked against their sha256 first. The exported file's sha256 is
    recorded in the written manifest. The export is deterministic on one machine; another
    machine, even with the same pinned torch/onnx, may write a file of the same size whose
    constants differ in their last bits (so a sha256 other than the built-in one), harmlessly:
    the parity check against torch holds either way.
    """
    manifest = builtin_manifest()
    build = manifest.get("build") or {}
    sources = build.get("sources") or {}
    try:
        ckpt_entry, conf_entry = sources["checkpoint"], sources["config"]
        (role,) = list(manifest["files"])
    except (KeyError, ValueError) as exc:
        raise ConfigurationError(f"pack {PACK_ID}: manifest has no usable build section") from exc
    checkpoint = model_dir / ckpt_entry["path"]
    config = model_dir / conf_entry["path"]
    for path, entry in ((checkpoint, ckpt_entry), (config, conf_entry)):
        if not path.is_file():
            raise ConfigurationError(f"cannot build {PACK_ID}: {path} not found")
        digest = sha256_file(path)
        if digest != entry["sha256"]:
            raise ConfigurationError(
                f"cannot build {PACK_ID}: {path} has sha256 {digest[:16]}…, "
                f"expected {entry['sha256'][:16]}…"
            )

    target = out_dir / PACK_ID
    rel = Path(manifest["files"][role]["path"])
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out_dir, prefix=f".{PACK_ID}-") as tmp:
        staging = Path(tmp) / PACK_ID
        report = export_checkpoint(checkpoint, config, staging / rel)
        entry = manifest["files"][role]
        if entry.get("sha256") != report.sha256:
            logger.info(
                "exported %s differs from the shipped sha256 (other torch/onnx version?); "
                "recording %s",
                rel,
                report.sha256,
            )
        entry["sha256"] = report.sha256
        entry["size_bytes"] = report.size_bytes
        manifest["build"] = {**build, "parity_max_abs_diff": report.max_abs_diff}
        (staging / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2) + "\n", "utf-8")
        if target.exists():
            shutil.rmtree(target)
        staging.rename(target)
    return target


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("checkpoint", type=Path, help="official AASIST .pth state dict")
    parser.add_argument("config", type=Path, help="upstream .conf (JSON with model_config)")
    parser.add_argument("output", type=Path, help="ONNX file to write")
    args = parser.parse_args(argv)
    report = export_checkpoint(args.checkpoint, args.config, args.output)
    print(f"wrote {report.path} ({report.size_bytes} B, {report.parameters} parameters)")
    print(f"sha256 {report.sha256}")
    print(f"parity torch vs onnxruntime: max abs diff {report.max_abs_diff:.3g}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
