"""Generic ONNX speaker encoder: CAM++ on real speech, plus tiny generated graphs for plumbing."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from bioverify.errors import AudioTooShort, ConfigurationError
from bioverify.voice.encoder_onnx import OnnxSpeakerEncoder, SpeakerEncoderSpec, campplus_spec
from bioverify.voice.fbank import KaldiFbank, apply_cmn

Clip = tuple[np.ndarray, int]


def test_campplus_embedding_is_unit_norm_and_deterministic(
    encoder: OnnxSpeakerEncoder, speech: Clip
) -> None:
    wave, _ = speech
    emb = encoder.embed(wave)
    assert (encoder.name, encoder.dim, encoder.sample_rate) == ("campplus_cn_en_common", 192, 16000)
    assert emb.shape == (192,)
    assert emb.dtype == np.float32
    assert np.linalg.norm(emb) == pytest.approx(1.0, abs=1e-5)
    np.testing.assert_array_equal(emb, encoder.embed(wave))


def test_campplus_features_are_the_reference_front_end(
    encoder: OnnxSpeakerEncoder, speech: Clip
) -> None:
    wave, _ = speech
    feats = encoder.features(wave)
    np.testing.assert_array_equal(feats, apply_cmn(KaldiFbank()(wave)))
    assert feats.flags.c_contiguous


def test_campplus_same_speaker_scores_higher(
    encoder: OnnxSpeakerEncoder,
    clip: Callable[[str], Clip],
    trials: list[tuple[str, str, int]],
) -> None:
    targets = [t for t in trials if t[2] == 1][:5]
    nontargets = [t for t in trials if t[2] == 0][:10]
    cache: dict[str, np.ndarray] = {}

    def score(a: str, b: str) -> float:
        for p in (a, b):
            if p not in cache:
                wave, rate = clip(p)
                cache[p] = encoder.embed(wave[: rate * 5 // 2])  # 2.5 s keeps the test fast
        return float(cache[a] @ cache[b])

    same = [score(a, b) for a, b, _ in targets]
    diff = [score(a, b) for a, b, _ in nontargets]
    assert min(same) > 0.5
    assert max(diff) < 0.55
    assert np.mean(same) - np.mean(diff) > 0.45
    assert min(same) > max(diff)


def test_embed_batch_matches_embed(encoder: OnnxSpeakerEncoder, speech: Clip) -> None:
    wave, rate = speech
    waves = [wave[: rate * 2], wave[rate : rate * 3], wave[: rate * 3]]  # two share a length
    batch = encoder.embed_batch(waves)
    assert batch.shape == (3, 192)
    for w, row in zip(waves, batch, strict=True):
        np.testing.assert_allclose(row, encoder.embed(w), atol=1e-5)


def test_too_short_for_a_template(encoder: OnnxSpeakerEncoder) -> None:
    with pytest.raises(AudioTooShort):
        encoder.embed(np.zeros(400 + 160 * 5, np.float32))  # 6 frames < min_frames


# --- configuration ------------------------------------------------------------------------


def test_campplus_metadata_sample_rate_is_checked(encoder: OnnxSpeakerEncoder) -> None:
    with pytest.raises(ConfigurationError, match="declares sample_rate 16000, the spec says 8000"):
        OnnxSpeakerEncoder(dataclasses.replace(encoder.spec, sample_rate=8000))


def test_spec_validation(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="input_layout must be one of"):
        SpeakerEncoderSpec(name="x", model_path=tmp_path, input_layout="TBF")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="input_layout BT goes with feature 'waveform'"):
        SpeakerEncoderSpec(name="x", model_path=tmp_path, feature="waveform")
    with pytest.raises(ConfigurationError, match="normalisation"):
        SpeakerEncoderSpec(name="x", model_path=tmp_path, normalisation="l2")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="model file not found"):
        OnnxSpeakerEncoder(campplus_spec(tmp_path / "missing.onnx"))
    bogus = tmp_path / "bogus.onnx"
    bogus.write_bytes(b"\x00" * 10)
    with pytest.raises(ConfigurationError, match=r"cannot load speaker encoder bogus\.onnx"):
        OnnxSpeakerEncoder(campplus_spec(bogus))


def test_spec_from_mapping(tmp_path: Path) -> None:
    spec = SpeakerEncoderSpec.from_mapping(
        {"name": "wespeaker", "model_path": "model.onnx", "fbank_params": {"num_bins": 80}},
        base_dir=tmp_path,
    )
    assert spec.model_path == tmp_path / "model.onnx"
    assert spec.fbank_params == {"num_bins": 80}
    with pytest.raises(ConfigurationError, match="unknown speaker encoder setting"):
        SpeakerEncoderSpec.from_mapping({"name": "x", "model_path": "m", "layout": "BTF"})
    with pytest.raises(ConfigurationError, match="'model_path' is missing"):
        SpeakerEncoderSpec.from_mapping({"name": "x"})


# --- tiny generated graphs: layout and waveform plumbing without weights ------------------


def _save(graph: onnx.GraphProto, path: Path) -> Path:
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, path)
    return path


def _mean_over_time_model(path: Path, layout: str, bins: int) -> Path:
    shape: list[str | int] = ["B", "T", bins] if layout == "BTF" else ["B", bins, "T"]
    axis = 1 if layout == "BTF" else 2
    graph = helper.make_graph(
        [helper.make_node("ReduceMean", ["feats"], ["emb"], axes=[axis], keepdims=0)],
        "mean_over_time",
        [helper.make_tensor_value_info("feats", TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info("emb", TensorProto.FLOAT, ["B", bins])],
    )
    return _save(graph, path)


def _waveform_stats_model(path: Path) -> Path:
    nodes = [
        helper.make_node("ReduceMax", ["wave"], ["mx"], axes=[1], keepdims=1),
        helper.make_node("ReduceMin", ["wave"], ["mn"], axes=[1], keepdims=1),
        helper.make_node("ReduceMean", ["wave"], ["avg"], axes=[1], keepdims=1),
        helper.make_node("Concat", ["mx", "mn", "avg"], ["emb"], axis=1),
    ]
    graph = helper.make_graph(
        nodes,
        "waveform_stats",
        [helper.make_tensor_value_info("wave", TensorProto.FLOAT, ["B", "T"])],
        [helper.make_tensor_value_info("emb", TensorProto.FLOAT, ["B", 3])],
    )
    return _save(graph, path)


def test_btf_and_bft_layouts_feed_the_same_features(tmp_path: Path, speech: Clip) -> None:
    wave, rate = speech
    wave = wave[: rate * 2]
    fbank = {"num_bins": 40}
    btf = OnnxSpeakerEncoder(
        SpeakerEncoderSpec(
            name="btf",
            model_path=_mean_over_time_model(tmp_path / "btf.onnx", "BTF", 40),
            fbank_params=fbank,
            normalisation="none",
        )
    )
    bft = OnnxSpeakerEncoder(
        SpeakerEncoderSpec(
            name="bft",
            model_path=_mean_over_time_model(tmp_path / "bft.onnx", "BFT", 40),
            fbank_params=fbank,
            normalisation="none",
            input_layout="BFT",
        )
    )
    assert btf.dim == bft.dim == 40
    assert bft.features(wave).shape[0] == 40
    expected = KaldiFbank(btf._fbank.config if btf._fbank else None)(wave).mean(axis=0)
    expected /= np.linalg.norm(expected)
    np.testing.assert_allclose(btf.embed(wave), expected, atol=1e-5)
    np.testing.assert_allclose(bft.embed(wave), expected, atol=1e-5)
    with pytest.raises(ConfigurationError, match="expects 40 features per frame"):
        OnnxSpeakerEncoder(dataclasses.replace(bft.spec, fbank_params={"num_bins": 80}))
    with pytest.raises(ConfigurationError, match="output dimension is 40, the spec says 41"):
        OnnxSpeakerEncoder(dataclasses.replace(btf.spec, dim=41))
    with pytest.raises(ConfigurationError, match="input 'wave'"):
        OnnxSpeakerEncoder(dataclasses.replace(btf.spec, input_name="wave"))
    with pytest.raises(ConfigurationError, match="rank 3, layout BT needs 2"):
        OnnxSpeakerEncoder(dataclasses.replace(btf.spec, feature="waveform", input_layout="BT"))


def test_waveform_model(tmp_path: Path) -> None:
    spec = SpeakerEncoderSpec(
        name="raw",
        model_path=_waveform_stats_model(tmp_path / "raw.onnx"),
        feature="waveform",
        input_layout="BT",
        normalisation="none",
    )
    enc = OnnxSpeakerEncoder(spec)
    wave = np.linspace(-0.5, 0.25, 16000, dtype=np.float32)
    expected = np.array([0.25, -0.5, wave.mean()])
    np.testing.assert_allclose(enc.embed(wave), expected / np.linalg.norm(expected), atol=1e-6)
    centred = OnnxSpeakerEncoder(dataclasses.replace(spec, normalisation="cmn"))
    assert abs(centred.features(wave).mean()) < 1e-6
    with pytest.raises(AudioTooShort):
        enc.embed(wave[:100])
