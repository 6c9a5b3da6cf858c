"""Generic ONNX speaker-encoder adapter, configured by a :class:`SpeakerEncoderSpec`.

One adapter serves any export whose front end is Kaldi fbank (CAM++, WeSpeaker ResNet,
SpeechBrain ECAPA exported with its features outside the graph), the raw waveform, or a
librosa-style mel spectrogram cut into fixed-length partial utterances whose embeddings are
averaged (``mel-ge2e``: Resemblyzer's GE2E LSTM); a model pack only has to describe the front
end, so new models need no code.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from bioverify.errors import AudioTooShort, ConfigurationError, InvalidAudio
from bioverify.voice.fbank import FbankConfig, KaldiFbank, apply_cmn, apply_cmvn
from bioverify.voice.mel import (
    MelConfig,
    MelSpectrogram,
    PartialsConfig,
    normalize_volume,
    partial_slices,
)
from bioverify.voice.ports import Waveform

Embedding = npt.NDArray[np.float32]

FeatureType = Literal["fbank", "waveform", "mel-ge2e"]
Normalisation = Literal["cmn", "cmvn", "none"]
InputLayout = Literal["BTF", "BFT", "BT"]

_FEATURES = ("fbank", "waveform", "mel-ge2e")
_NORMALISATIONS = ("cmn", "cmvn", "none")
_LAYOUTS = ("BTF", "BFT", "BT")


@dataclass(frozen=True)
class SpeakerEncoderSpec:
    """How to feed one ONNX speaker-embedding model.

    ``input_layout`` is ``BTF`` ([batch, frames, feats], CAM++, WeSpeaker) or ``BFT``
    ([batch, feats, frames]) for fbank models, ``BT`` ([batch, samples]) for waveform models.
    ``normalisation`` applies per utterance over time (to the waveform itself for waveform
    models). ``dim`` and the input/output names default to what the model declares.

    ``mel-ge2e`` models take ``mel_params`` (:class:`~bioverify.voice.mel.MelConfig`) and
    ``partials`` (:class:`~bioverify.voice.mel.PartialsConfig`): the utterance is zero-padded,
    turned into mel frames, cut into fixed-length partials that run as one batch, and the
    embedding is the normalised mean of the partials' normalised embeddings.
    ``volume_norm_dbfs``, when set, first raises the waveform's loudness to that RMS level (it
    is never lowered), as models fed linear-power features need.
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
    mel_params: Mapping[str, Any] = field(default_factory=dict)
    partials: Mapping[str, Any] = field(default_factory=dict)
    volume_norm_dbfs: float | None = None

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
        if self.feature != "mel-ge2e" and (self.mel_params or self.partials):
            problems.append("mel_params and partials go with feature 'mel-ge2e' only")
        if self.volume_norm_dbfs is not None and not -80.0 <= self.volume_norm_dbfs <= 0.0:
            problems.append("volume_norm_dbfs must be between -80 and 0 dB full scale")
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
        kwargs["mel_params"] = dict(kwargs.get("mel_params") or {})
        kwargs["partials"] = dict(kwargs.get("partials") or {})
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


GE2E_MEL_PARAMS: Mapping[str, Any] = {
    "n_fft": 400,
    "hop_length": 160,
    "n_mels": 40,
    "center": True,
    "pad_mode": "constant",
    "power": 2.0,
    "mel_scale": "slaney",
    "mel_norm": "slaney",
}
GE2E_PARTIALS: Mapping[str, Any] = {"frames": 160, "per_second": 1.3, "min_coverage": 0.75}


def ge2e_spec(model_path: Path, *, name: str = "resemblyzer_ge2e") -> SpeakerEncoderSpec:
    """Resemblyzer's GE2E LSTM front end (``resemblyzer/audio.py``, ``hparams.py``,
    ``VoiceEncoder.embed_utterance`` defaults): 40 Slaney mel bands of linear power from a
    25 ms / 10 ms centred STFT, 1.6 s partials at 1.3 per second, loudness raised to -30 dBFS.
    """
    return SpeakerEncoderSpec(
        name=name,
        model_path=model_path,
        sample_rate=16000,
        feature="mel-ge2e",
        mel_params=dict(GE2E_MEL_PARAMS),
        partials=dict(GE2E_PARTIALS),
        volume_norm_dbfs=-30.0,
        normalisation="none",
        input_layout="BTF",
        dim=256,
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
        self._mel: MelSpectrogram | None = None
        self._partials = PartialsConfig.from_dict(spec.partials)
        if spec.feature == "fbank":
            self._fbank = KaldiFbank(
                FbankConfig.from_dict(spec.fbank_params, sample_rate=spec.sample_rate)
            )
        elif spec.feature == "mel-ge2e":
            self._mel = MelSpectrogram(
                MelConfig.from_dict(spec.mel_params, sample_rate=spec.sample_rate)
            )
            partial_slices(0, self._mel.config.hop_length, spec.sample_rate, self._partials)
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
        front_end = self._fbank or self._mel
        if front_end is not None:
            feat_axis = 2 if spec.input_layout == "BTF" else 1
            declared = shape[feat_axis]
            if isinstance(declared, int) and declared != front_end.dim:
                raise ConfigurationError(
                    f"{filename}: model expects {declared} features per frame, the "
                    f"{spec.feature} front end gives {front_end.dim} (check input_layout and "
                    "num_bins / n_mels)"
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
        """Model input for one utterance, without the batch axis, in the spec's layout; for
        ``mel-ge2e`` the utterance's partials, stacked on a leading axis (one batch)."""
        spec = self.spec
        wave = np.asarray(wave, dtype=np.float32).reshape(-1)
        if spec.volume_norm_dbfs is not None:
            wave = normalize_volume(wave, spec.volume_norm_dbfs, increase_only=True)
        if self._mel is not None:
            return self._partial_features(wave, self._mel)
        if self._fbank is None:
            if wave.size < spec.min_frames * spec.sample_rate // 100:
                raise AudioTooShort("the speech is too short to compute a voice template")
            return _normalise_waveform(wave, spec.normalisation)
        feats = self._fbank(wave)
        if feats.shape[0] < spec.min_frames:
            raise AudioTooShort("the speech is too short to compute a voice template")
        feats = _normalise_features(feats, spec.normalisation)
        return np.ascontiguousarray(feats.T if spec.input_layout == "BFT" else feats, np.float32)

    def _partial_features(self, wave: Waveform, mel: MelSpectrogram) -> npt.NDArray[np.float32]:
        spec = self.spec
        if mel.num_frames(wave.size) < spec.min_frames:
            raise AudioTooShort("the speech is too short to compute a voice template")
        slices, padded = partial_slices(
            wave.size, mel.config.hop_length, spec.sample_rate, self._partials
        )
        if padded > wave.size:
            wave = np.pad(wave, (0, padded - wave.size))
        feats = _normalise_features(mel(wave), spec.normalisation)
        stacked = np.stack([feats[s] for s in slices])
        if spec.input_layout == "BFT":
            stacked = stacked.transpose(0, 2, 1)
        return np.ascontiguousarray(stacked, dtype=np.float32)

    def embed(self, wave: Waveform) -> Embedding:
        """(dim,) float32 embedding of unit L2 norm."""
        if self._mel is not None:
            pooled: Embedding = self.embed_batch([wave])[0]
            return pooled
        embedding: Embedding = self._run(self.features(wave)[np.newaxis])[0]
        return embedding

    def embed_batch(self, waves: Sequence[Waveform]) -> npt.NDArray[np.float32]:
        """(N, dim) embeddings; utterances of equal length share one ONNX call.

        Utterances are never padded to a common length: the models have no masking, so
        padding would change their embeddings.
        """
        feats = [self.features(w) for w in waves]
        if self._mel is not None:
            return self._mean_of_partials(feats)
        out = np.empty((len(feats), self.dim), dtype=np.float32)
        groups: dict[tuple[int, ...], list[int]] = {}
        for i, f in enumerate(feats):
            groups.setdefault(f.shape, []).append(i)
        for idx in groups.values():
            out[idx] = self._run(np.stack([feats[i] for i in idx]))
        return out

    def _mean_of_partials(
        self, partials: Sequence[npt.NDArray[np.float32]]
    ) -> npt.NDArray[np.float32]:
        """Every partial of every utterance in batches of equal length; per utterance the
        normalised mean of its partials' embeddings."""
        counts = [p.shape[0] for p in partials]
        stacked = np.concatenate(partials)
        rows = np.concatenate(
            [
                self._run(stacked[i : i + MAX_PARTIALS_PER_RUN])
                for i in range(0, stacked.shape[0], MAX_PARTIALS_PER_RUN)
            ]
        )
        bounds = np.cumsum([0, *counts])
        means = np.stack([rows[a:b].mean(axis=0) for a, b in itertools.pairwise(bounds)])
        norms = np.linalg.norm(means, axis=1, keepdims=True)
        if np.any(norms == 0):
            raise InvalidAudio("no voice template could be computed from this audio")
        return np.asarray(means / norms, dtype=np.float32)

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


MAX_PARTIALS_PER_RUN = 64
"""Bounds the memory of one ONNX call for long clips (64 GE2E partials = about 50 s)."""


def _normalise_features(
    feats: npt.NDArray[np.float32], normalisation: str
) -> npt.NDArray[np.float32]:
    if normalisation == "cmn":
        return apply_cmn(feats)
    if normalisation == "cmvn":
        return apply_cmvn(feats)
    return feats


def _normalise_waveform(wave: Waveform, normalisation: str) -> Waveform:
    if normalisation == "none":
        return wave
    centred = wave - wave.mean(dtype=np.float64)
    if normalisation == "cmn":
        return np.asarray(centred, dtype=np.float32)
    std = float(np.sqrt(np.mean(centred * centred)))
    return np.asarray(centred / max(std, 1e-5), dtype=np.float32)
