"""Build a voice pack from Resemblyzer's GE2E encoder, whose weights ship in its PyPI wheel.

Build-time only (it imports torch; the service never imports this module). Steps:

1. find ``resemblyzer/pretrained.pt`` without importing resemblyzer (``pip install --no-deps
   resemblyzer`` is enough), load it with ``torch.load(weights_only=True)``;
2. rebuild the network (3-layer LSTM 40->256, linear 256->256, ReLU, L2 norm: the whole of
   ``resemblyzer.VoiceEncoder.forward``), load the weights strictly (only the GE2E loss's
   ``similarity_weight``/``similarity_bias`` are left out) and export it to ONNX with dynamic
   batch and frame axes: input ``mels`` [B, T, 40] (linear-power Slaney mel, see
   :func:`bioverify.voice.encoder_onnx.ge2e_spec`), output ``embedding`` [B, 256];
3. check the ONNX network against torch on random input, and, with ``--check``, the whole
   front end + ONNX (:class:`~bioverify.voice.encoder_onnx.OnnxSpeakerEncoder` with
   ``feature: mel-ge2e``) against ``resemblyzer.VoiceEncoder.embed_utterance`` on real clips;
4. write a self-contained pack directory (the ONNX file, a copy of Silero VAD's ONNX file
   from the silero-vad wheel, and ``bioverify-pack.json``) for
   ``bioverify-admin models import``, then ``bioverify-admin calibrate voice --pack
   voice-ge2e-resemblyzer --utterances UTTERANCES.tsv --write`` fits its calibration.

    python -m bioverify.voice.export_ge2e --out-dir build/voice-ge2e-resemblyzer [--check CLIP...]
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import json
import logging
import shutil
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bioverify.errors import ConfigurationError
from bioverify.packs import MANIFEST_NAME, SCHEMA, sha256_file

logger = logging.getLogger(__name__)

PACKAGE = "resemblyzer"
WEIGHTS = "pretrained.pt"
ONNX_NAME = "ge2e_resemblyzer.onnx"
PACK_ID = "voice-ge2e-resemblyzer"
OPSET = 17
N_MELS, HIDDEN, LAYERS, EMBEDDING = 40, 256, 3, 256
LOSS_KEYS = ("similarity_weight", "similarity_bias")


def resemblyzer_weights() -> Path:
    """``pretrained.pt`` inside the installed resemblyzer wheel (the package is not imported)."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ConfigurationError(
            "the resemblyzer package is not installed: pip install --no-deps resemblyzer==0.1.4"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / WEIGHTS
    if not path.is_file():
        raise ConfigurationError(f"resemblyzer is installed but {path} is missing")
    return path


def _network(weights: Path) -> Any:
    """The GE2E network as a torch module in eval mode, weights loaded strictly."""
    import torch
    from torch import nn

    class GE2E(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lstm = nn.LSTM(N_MELS, HIDDEN, LAYERS, batch_first=True)
            self.linear = nn.Linear(HIDDEN, EMBEDDING)

        def forward(self, mels: torch.Tensor) -> torch.Tensor:
            _, (hidden, _) = self.lstm(mels)
            raw = torch.relu(self.linear(hidden[-1]))
            out: torch.Tensor = raw / torch.norm(raw, dim=1, keepdim=True)
            return out

    checkpoint = torch.load(weights, map_location="cpu", weights_only=True)
    state = {k: v for k, v in checkpoint["model_state"].items() if k not in LOSS_KEYS}
    model = GE2E()
    model.load_state_dict(state, strict=True)
    return model.eval()


def export_ge2e_onnx(out_path: Path, *, weights: Path | None = None) -> Path:
    """Export the GE2E network to ``out_path`` (ONNX, opset 17) and check it against torch."""
    import onnx
    import torch

    weights = weights or resemblyzer_weights()
    model = _network(weights)
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    example = torch.zeros(2, 160, N_MELS)
    with warnings.catch_warnings():
        # The TorchScript exporter warns about itself and about LSTM batch sizes.
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model,
            (example,),
            str(out_path),
            input_names=["mels"],
            output_names=["embedding"],
            dynamic_axes={"mels": {0: "batch", 1: "num_frames"}, "embedding": {0: "batch"}},
            opset_version=OPSET,
            do_constant_folding=True,
            dynamo=False,
        )
    proto = onnx.load(str(out_path))
    meta = {
        "framework": "resemblyzer",
        "model_id": "resemblyzer GE2E VoiceEncoder (pretrained.pt)",
        "source_checkpoint": f"PyPI resemblyzer {_version(PACKAGE)} {WEIGHTS} "
        f"sha256 {sha256_file(weights)}",
        "license": "Apache-2.0",
        "sample_rate": "16000",
        "feat_dim": str(N_MELS),
        "output_dim": str(EMBEDDING),
        "feature": "mel-ge2e: librosa melspectrogram n_fft 400 hop 160 n_mels 40 power 2, "
        "1.6 s partials at 1.3/s, mean of L2-normalised partial embeddings",
        "input_layout": "BTF",
        "exporter": f"torch {torch.__version__} torch.onnx.export(dynamo=False) opset {OPSET}",
    }
    onnx.helper.set_model_props(proto, meta)
    onnx.checker.check_model(proto)
    onnx.save(proto, str(out_path))
    diff = network_parity(out_path, model)
    if diff > 1e-4:
        raise RuntimeError(f"ONNX export differs from torch by {diff:.2e}")
    logger.info("exported %s (torch parity: max abs diff %.2e)", out_path, diff)
    return out_path


def network_parity(onnx_path: Path, model: Any, seed: int = 0) -> float:
    """Max abs difference between ONNX Runtime and torch on random [B, T, 40] inputs."""
    import onnxruntime as ort
    import torch

    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(seed)
    worst = 0.0
    for batch, frames in ((1, 160), (3, 160), (2, 57), (1, 700)):
        mels = rng.gamma(0.5, 2.0, size=(batch, frames, N_MELS)).astype(np.float32)
        (ours,) = session.run(None, {"mels": mels})
        with torch.no_grad():
            ref = model(torch.from_numpy(mels)).numpy()
        worst = max(worst, float(np.abs(ours - ref).max()))
    return worst


def utterance_parity(onnx_path: Path, clips: Sequence[Path]) -> list[float]:
    """Cosine between resemblyzer's ``embed_utterance(preprocess_wav(clip))`` and our
    front end + ONNX on the same preprocessed waveform, per clip. Needs resemblyzer with its
    dependencies (librosa, webrtcvad)."""
    from bioverify.voice.encoder_onnx import OnnxSpeakerEncoder, ge2e_spec

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scipy.ndimage.morphology, pkg_resources (webrtcvad)
        from resemblyzer import VoiceEncoder, preprocess_wav

        reference = VoiceEncoder(device="cpu", verbose=False)
        ours = OnnxSpeakerEncoder(ge2e_spec(onnx_path))
        cosines = []
        for clip in clips:
            wav = preprocess_wav(clip)
            a = reference.embed_utterance(wav)
            b = ours.embed(np.asarray(wav, dtype=np.float32))
            cosines.append(float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b))))
    return cosines


VAD_NAME = "silero_vad_16k_sequence.onnx"


def pack_manifest(onnx_path: Path, vad_path: Path) -> dict[str, Any]:
    """``bioverify-pack.json`` for a pack directory holding ``onnx_path`` and ``vad_path``
    (uncalibrated: ``bioverify-admin calibrate`` fills calibration and operating points)."""
    from bioverify.voice.encoder_onnx import ge2e_spec

    spec = ge2e_spec(Path(onnx_path.name))
    return {
        "schema": SCHEMA,
        "id": PACK_ID,
        "version": "1",
        "modality": "voice",
        "priority": 80,
        "description": "Silero VAD (speech only) + Resemblyzer GE2E 3-layer LSTM 256-d speaker "
        "embedding (VoxCeleb/LibriSpeech-trained) on 40 linear-power Slaney mel bands, 1.6 s "
        "partials averaged. Weights ship on PyPI (resemblyzer), so this pack works on a machine "
        "with nothing but PyPI.",
        "licence": "GE2E weights: Apache-2.0 (resemblyzer). Silero VAD: MIT.",
        "embedding_dim": EMBEDDING,
        "files": {
            "encoder": {
                "path": onnx_path.name,
                "sha256": sha256_file(onnx_path),
                "size_bytes": onnx_path.stat().st_size,
                "licence": "Apache-2.0",
                "source": f"PyPI resemblyzer {_version(PACKAGE)} {WEIGHTS}, exported to ONNX "
                f"(opset {OPSET}) by bioverify.voice.export_ge2e",
            },
            "vad": {
                "path": vad_path.name,
                "sha256": sha256_file(vad_path),
                "size_bytes": vad_path.stat().st_size,
                "licence": "MIT",
                "source": f"PyPI silero-vad {_version('silero-vad')} data/{VAD_NAME}",
            },
        },
        "components": {
            "vad": {"adapter": "silero", "files": ["vad"], "params": {"sample_rate": 16000}},
            "encoder": {
                "adapter": "onnx-speaker",
                "files": ["encoder"],
                "params": {
                    "name": spec.name,
                    "sample_rate": spec.sample_rate,
                    "feature": spec.feature,
                    "mel_params": dict(spec.mel_params),
                    "partials": dict(spec.partials),
                    "volume_norm_dbfs": spec.volume_norm_dbfs,
                    "normalisation": spec.normalisation,
                    "input_layout": spec.input_layout,
                    "dim": spec.dim,
                },
            },
        },
        "quality": {},
        "operating_points": [],
    }


def write_pack(out_dir: Path, *, weights: Path | None = None) -> Path:
    """Export the ONNX file into ``out_dir``, copy Silero VAD's ONNX file (from the silero-vad
    wheel) beside it, and write the pack manifest: a self-contained directory that
    ``bioverify-admin models import`` accepts."""
    from bioverify.packs import PackFile, resolve_file

    out_dir = Path(out_dir)
    onnx_path = export_ge2e_onnx(out_dir / ONNX_NAME, weights=weights)
    vad = resolve_file(PackFile("vad", f"data/{VAD_NAME}", "", 0, package="silero_vad"), out_dir)
    if not vad.is_file():
        raise ConfigurationError(f"the Silero VAD file is missing: {vad}")
    vad_copy = out_dir / VAD_NAME
    shutil.copyfile(vad, vad_copy)
    manifest = pack_manifest(onnx_path, vad_copy)
    path = out_dir / MANIFEST_NAME
    path.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return path


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bioverify.voice.export_ge2e",
        description="Export Resemblyzer's GE2E voice encoder to an ONNX voice pack.",
    )
    parser.add_argument("--out-dir", type=Path, required=True, help="pack directory to write")
    parser.add_argument("--weights", type=Path, help="pretrained.pt (default: the installed one)")
    parser.add_argument(
        "--check",
        type=Path,
        nargs="*",
        default=[],
        help="audio clips to check against resemblyzer's own embed_utterance (cos > 0.999)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        manifest = write_pack(args.out_dir, weights=args.weights)
    except ConfigurationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {manifest} and {args.out_dir / ONNX_NAME}")
    if args.check:
        cosines = utterance_parity(args.out_dir / ONNX_NAME, args.check)
        for clip, cos in zip(args.check, cosines, strict=True):
            print(f"  cos {cos:.7f} (1 - cos = {1 - cos:.1e})  {clip}")
        if min(cosines) <= 0.999:
            print("parity check FAILED (cos <= 0.999)", file=sys.stderr)
            return 1
        print(f"parity check passed: min cos {min(cosines):.7f} over {len(cosines)} clips")
    return 0


if __name__ == "__main__":
    sys.exit(main())
