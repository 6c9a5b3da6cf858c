"""Generic ONNX speaker-encoder adapter, configured by a :class:`SpeakerEncoderSpec`.

One adapter serves any export whose front end is either Kaldi fbank (CAM++, WeSpeaker
ResNet, SpeechBrain ECAPA exported with its features outside the graph) or the raw waveform;
a model pack only has to describe the front end, so new models need no code.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from bioverify.errors import AudioTooShort, ConfigurationError, InvalidAudio
from bioverify.voice.fbank import FbankConfig, KaldiFbank, apply_cmn, apply_cmvn
from bioverify.voice.ports import Waveform

Embedding = npt.NDArray[np.float32]

FeatureType = Literal["fbank", "waveform"]
Normalisation = Literal["cmn", "cmvn", "none"]
InputLayout = Literal["BTF", "BFT", "BT"]

_FEATURES = ("fbank", "waveform")
_NORMALISATIONS = ("cmn", "cmvn", "none")
_LAYOUTS = ("BTF", "BFT", "BT")


@dataclass(frozen=True)
class SpeakerEncoderSpec:
    """How to feed one ONNX speaker-embedding model.

    ``input_layout`` is ``BTF`` ([batch, frames, feats], CAM++, WeSpeaker) or ``BFT``
    ([batch, feats, frames]) for fbank models, ``BT`` ([batch, samples]) for waveform models.
    ``normalisation`` applies per utterance over time (to the waveform itself for waveform
    models). ``dim`` and the input/output names default to what the model declares.
    """

    name: str
    model_path: Path
    sample_rate: int = 16000
    feature: FeatureType = "fbank"
    fbank_params: Mapping[str, Any] = field(default_factory=dict)
    normalisation: Normalisation = "cmn"
    input_layout: InputLayout = "BTF"
    input_name: str | None = None
    output_name: str | None = None
    dim: int | None = None
    min_frames: int = 10
    """Fewer feature frames (samples / 160 for waveform models) is AudioTooShort."""

    def __post_init__(self) -> None:
        problems = []
        if self.feature not in _FEATURES:
            problems.append(f"feature must be one of {', '.join(_FEATURES)}")
        if self.normalisation not in _NORMALISATIONS:
            problems.append(f"normalisation must be one of {', '.join(_NORMALISATIONS)}")
        if self.input_layout not in _LAYOUTS:
            problems.append(f"input_layout must be one of {', '.join(_LAYOUTS)}")
        elif (self.feature == "waveform") != (self.input_layout == "BT"):
            problems.append("input_layout BT goes with feature 'waveform' (and only with it)")
        if self.sample_rate <= 0:
            problems.append("sample_rate must be positive")
        if self.min_frames < 1:
            problems.append("min_frames must be at least 1")
        if problems:
            raise ConfigurationError(
                f"invalid speaker encoder spec {self.name!r}: " + "; ".join(problems)
            )

    @classmethod
    def from_mapping(
        cls, values: Mapping[str, Any], *, base_dir: Path | None = None
    ) -> SpeakerEncoderSpec:
        """Build from a pack manifest section; a relative ``model_path`` is under ``base_dir``."""
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigurationError(
                f"unknown speaker encoder setting(s) {', '.join(unknown)}; valid: "
                f"{', '.join(sorted(known))}"
            )
        for required in ("name", "model_path"):
            if required not in values:
                raise ConfigurationError(f"speaker encoder setting {required!r} is missing")
        kwargs = dict(values)
        path = Path(kwargs["model_path"])
        if base_dir is not None and not path.is_absolute():
            path = base_dir / path
        kwargs["model_path"] = path
        kwargs["fbank_params"] = dict(kwargs.get("fbank_params") or {})
        try:
            return cls(**kwargs)
        except TypeError as exc:
            raise ConfigurationError(f"invalid speaker encoder settings: {exc}") from exc


def campplus_spec(model_path: Path, *, name: str = "campplus_cn_en_common") -> SpeakerEncoderSpec:
    """The 3D-Speaker CAM++ reference front end (see ``shared/models/MANIFEST.md``)."""
    return SpeakerEncoderSpec(
        name=name,
        model_path=model_path,
        sample_rate=16000,
        feature="fbank",
        fbank_params={"num_bins": 80},
        normalisation="cmn",
        input_layout="BTF",
        dim=192,
    )


class OnnxSpeakerEncoder:
    """:class:`~bioverify.voice.ports.SpeakerEncoder` over an ONNX model. Thread-safe."""

    def __init__(self, spec: SpeakerEncoderSpec, *, threads: int = 1) -> None:
        self.spec = spec
        self.name = spec.name
        self.sample_rate = spec.sample_rate
        path = Path(spec.model_path)
        if not path.is_file():
            raise ConfigurationError(f"speaker encoder model file not found: {path}")
        self._fbank: KaldiFbank | None = None
        if spec.feature == "fbank":
            self._fbank = KaldiFbank(
                FbankConfig.from_dict(spec.fbank_params, sample_rate=spec.sample_rate)
            )
        os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        try:
            self._session = ort.InferenceSession(
                str(path), sess_options=opts, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # onnxruntime raises several unrelated types
            raise ConfigurationError(f"cannot load speaker encoder {path.name}: {exc}") from exc
        self._input_name, self._output_name, self.dim = self._check_model(path.name)

    def _check_model(self, filename: str) -> tuple[str, str, int]:
        spec = self.spec
        inputs = {i.name: i for i in self._session.get_inputs()}
        outputs = {o.name: o for o in self._session.get_outputs()}
        in_name = spec.input_name or next(iter(inputs))
        out_name = spec.output_name or next(iter(outputs))
        if in_name not in inputs or out_name not in outputs:
            raise ConfigurationError(
                f"{filename}: input {in_name!r} / output {out_name!r} not found (inputs: "
                f"{', '.join(inputs)}; outputs: {', '.join(outputs)})"
            )
        shape = inputs[in_name].shape
        want_rank = 2 if spec.input_layout == "BT" else 3
        if len(shape) != want_rank:
            raise ConfigurationError(
                f"{filename}: input {in_name!r} has rank {len(shape)}, layout "
                f"{spec.input_layout} needs {want_rank}"
            )
        if self._fbank is not None:
            feat_axis = 2 if spec.input_layout == "BTF" else 1
            declared = shape[feat_axis]
            if isinstance(declared, int) and declared != self._fbank.dim:
                raise ConfigurationError(
                    f"{filename}: model expects {declared} features per frame, the fbank "
                    f"front end gives {self._fbank.dim} (check input_layout and num_bins)"
                )
        meta = self._session.get_modelmeta().custom_metadata_map
        meta_rate = meta.get("sample_rate")
        if meta_rate is not None and meta_rate.isdigit() and int(meta_rate) != spec.sample_rate:
            raise ConfigurationError(
                f"{filename} declares sample_rate {meta_rate}, the spec says {spec.sample_rate}"
            )
        out_shape = outputs[out_name].shape
        declared_dim = out_shape[-1] if out_shape else None
        if isinstance(declared_dim, int):
            if spec.dim is not None and spec.dim != declared_dim:
                raise ConfigurationError(
                    f"{filename}: output dimension is {declared_dim}, the spec says {spec.dim}"
                )
            return in_name, out_name, declared_dim
        if spec.dim is None:
            raise ConfigurationError(
                f"{filename}: the output dimension is not fixed in the model; set dim in the spec"
            )
        return in_name, out_name, spec.dim

    def features(self, wave: Waveform) -> npt.NDArray[np.float32]:
        """Model input for one utterance, without the batch axis, in the spec's layout."""
        spec = self.spec
        wave = np.asarray(wave, dtype=np.float32).reshape(-1)
        if self._fbank is None:
            if wave.size < spec.min_frames * spec.sample_rate // 100:
                raise AudioTooShort("the speech is too short to compute a voice template")
            return _normalise_waveform(wave, spec.normalisation)
        feats = self._fbank(wave)
        if feats.shape[0] < spec.min_frames:
            raise AudioTooShort("the speech is too short to compute a voice template")
        if spec.normalisation == "cmn":
            feats = apply_cmn(feats)
        elif spec.normalisation == "cmvn":
            feats = apply_cmvn(feats)
        return np.ascontiguousarray(feats.T if spec.input_layout == "BFT" else feats, np.float32)

    def embed(self, wave: Waveform) -> Embedding:
        """(dim,) float32 embedding of unit L2 norm."""
        embedding: Embedding = self._run(self.features(wave)[np.newaxis])[0]
        return embedding

    def embed_batch(self, waves: Sequence[Waveform]) -> npt.NDArray[np.float32]:
        """(N, dim) embeddings; utterances of equal length share one ONNX call.

        Utterances are never padded to a common length: the models have no masking, so
        padding would change their embeddings.
        """
        feats = [self.features(w) for w in waves]
        out = np.empty((len(feats), self.dim), dtype=np.float32)
        groups: dict[tuple[int, ...], list[int]] = {}
        for i, f in enumerate(feats):
            groups.setdefault(f.shape, []).append(i)
        for idx in groups.values():
            out[idx] = self._run(np.stack([feats[i] for i in idx]))
        return out

    def _run(self, batch: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        try:
            (raw,) = self._session.run([self._output_name], {self._input_name: batch})
        except Exception as exc:  # onnxruntime raises its own exception types
            raise InvalidAudio("the speaker model could not process this audio") from exc
        emb = np.asarray(raw, dtype=np.float32).reshape(batch.shape[0], -1)
        if emb.shape[1] != self.dim:
            raise ConfigurationError(
                f"speaker model {self.name} returned {emb.shape[1]} values, expected {self.dim}"
            )
        norms = np.linalg.norm(emb, axis=1, keepdims=True)
        if not np.all(np.isfinite(norms)) or np.any(norms == 0):
            raise InvalidAudio("no voice template could be computed from this audio")
        return np.asarray(emb / norms, dtype=np.float32)


def _normalise_waveform(wave: Waveform, normalisation: str) -> Waveform:
    if normalisation == "none":
        return wave
    centred = wave - wave.mean(dtype=np.float64)
    if normalisation == "cmn":
        return np.asarray(centred, dtype=np.float32)
    std = float(np.sqrt(np.mean(centred * centred)))
    return np.asarray(centred / max(std, 1e-5), dtype=np.float32)
