"""librosa-style mel front end and the ``mel-ge2e`` mode of the generic ONNX speaker encoder.

Golden values were computed with librosa 0.11 and resemblyzer 0.1.4 (neither is needed here).
The GE2E export test runs when resemblyzer's wheel (its ``pretrained.pt``) is installed.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from bioverify.errors import AudioTooShort, ConfigurationError
from bioverify.voice.encoder_onnx import (
    OnnxSpeakerEncoder,
    SpeakerEncoderSpec,
    ge2e_spec,
)
from bioverify.voice.mel import (
    MelConfig,
    MelSpectrogram,
    PartialsConfig,
    hz_to_mel,
    mel_filter_bank,
    mel_to_hz,
    normalize_volume,
    partial_slices,
)

Clip = tuple[np.ndarray, int]


# --- mel maths against librosa -----------------------------------------------------------------
def test_mel_scale_golden() -> None:
    np.testing.assert_allclose(
        hz_to_mel([0, 500, 1000, 4000, 8000]), [0, 7.5, 15, 35.16376031, 45.24564047]
    )
    np.testing.assert_allclose(
        mel_to_hz([5, 15, 30, 40]), [333.3333333, 1000, 2804.644131, 5577.800012]
    )
    np.testing.assert_allclose(mel_to_hz(hz_to_mel([440.0, 6000.0], "htk"), "htk"), [440, 6000])


def test_filter_bank_golden() -> None:
    fb = mel_filter_bank(MelConfig())  # librosa.filters.mel(sr=16000, n_fft=400, n_mels=40)
    assert fb.shape == (40, 201) and fb.dtype == np.float32
    for band, peak_bin, peak in (
        (0, 2, 0.0124045210),
        (1, 4, 0.0112165716),
        (20, 44, 0.0071919174),
        (39, 185, 0.0017249404),
    ):
        assert int(fb[band].argmax()) == peak_bin
        assert float(fb[band].max()) == pytest.approx(peak, rel=1e-6)
    assert float(fb.sum()) == pytest.approx(0.99949718, rel=1e-6)


def test_mel_spectrogram_golden() -> None:
    t = np.arange(1600) / 16000
    y = (0.1 * np.sin(2 * np.pi * 1000 * t)).astype(np.float32)
    mel = MelSpectrogram()(y)  # librosa.feature.melspectrogram(y, 16000, n_fft=400, hop=160, 40)
    assert mel.shape == (11, 40) and mel.dtype == np.float32
    assert int(mel[5].argmax()) == 13
    assert float(mel[5, 13]) == pytest.approx(1.0451998, rel=1e-5)
    assert float(mel[0, 13]) == pytest.approx(0.40138578, rel=1e-5)  # zero-padded edge frame
    assert float(mel.sum()) == pytest.approx(19.590429, rel=1e-5)
    assert MelSpectrogram().num_frames(1600) == 11


def test_log_mel_and_uncentred_frames() -> None:
    y = np.random.default_rng(0).normal(0, 0.1, 4000).astype(np.float32)
    config = MelConfig(center=False, log=True, n_mels=24)
    mel = MelSpectrogram(config)(y)
    assert mel.shape == (MelSpectrogram(config).num_frames(4000), 24) == (23, 24)
    np.testing.assert_allclose(
        np.exp(mel), MelSpectrogram(MelConfig(center=False, n_mels=24))(y), rtol=1e-4
    )


@pytest.mark.parametrize(
    "samples, count, last_start, padded",
    [(16000, 1, 0, 25600), (25600, 1, 0, 25600), (48000, 3, 154, 50240), (160000, 12, 847, 161120)],
)
def test_partial_slices_match_resemblyzer(
    samples: int, count: int, last_start: int, padded: int
) -> None:
    slices, length = partial_slices(samples, 160, 16000, PartialsConfig())
    assert len(slices) == count and slices[-1].start == last_start and length == padded
    assert all(s.stop - s.start == 160 for s in slices)
    assert [s.start for s in slices] == list(range(0, 77 * count, 77))


def test_normalize_volume() -> None:
    quiet = np.full(100, 0.001, np.float32)
    assert float(normalize_volume(quiet, -30.0)[0]) == pytest.approx(0.03162278, rel=1e-6)
    loud = np.full(100, 0.5, np.float32)
    np.testing.assert_array_equal(normalize_volume(loud, -30.0), loud)  # never lowered
    assert float(normalize_volume(loud, -30.0, increase_only=False)[0]) == pytest.approx(0.0316228)
    np.testing.assert_array_equal(normalize_volume(np.zeros(5, np.float32), -30.0), np.zeros(5))


@pytest.mark.parametrize(
    "make",
    [
        lambda: MelConfig(n_fft=1),
        lambda: MelConfig(win_length=500),
        lambda: MelConfig(fmin=9000.0),
        lambda: MelConfig(pad_mode="wrap"),
        lambda: MelConfig(mel_scale="bark"),
        lambda: MelConfig.from_dict({"n_mels": 40.0}),
        lambda: MelConfig.from_dict({"hop": 160}),
        lambda: MelConfig.from_dict({"sample_rate": 8000}, sample_rate=16000),
        lambda: PartialsConfig(min_coverage=0.0),
        lambda: PartialsConfig.from_dict({"frames": "160"}),
        lambda: partial_slices(16000, 160, 16000, PartialsConfig(per_second=0.1)),
    ],
)
def test_bad_mel_configuration(make: object) -> None:
    with pytest.raises(ConfigurationError):
        make()  # type: ignore[operator]


# --- the mel-ge2e mode on a tiny generated graph -----------------------------------------------
def mean_over_time_model(path: Path, n_mels: int = 40, layout: str = "BTF") -> Path:
    """[B, T, n_mels] (or [B, n_mels, T]) -> [B, n_mels]: the mean mel frame, a stand-in
    speaker model."""
    shape: list[str | int | None] = (
        ["batch", "frames", n_mels] if layout == "BTF" else ["batch", n_mels, "frames"]
    )
    time_axis = shape.index("frames")
    graph = helper.make_graph(
        [helper.make_node("ReduceMean", ["mels"], ["embedding"], axes=[time_axis], keepdims=0)],
        "mean_over_time",
        [helper.make_tensor_value_info("mels", TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["batch", n_mels])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def tiny_spec(model: Path, **changes: object) -> SpeakerEncoderSpec:
    values = {**ge2e_spec(model).__dict__, "dim": None, **changes}
    return SpeakerEncoderSpec(**values)


def test_partials_are_embedded_and_averaged(tmp_path: Path, speech: Clip) -> None:
    wave, rate = speech
    enc = OnnxSpeakerEncoder(tiny_spec(mean_over_time_model(tmp_path / "m.onnx")))
    assert enc.dim == 40
    feats = enc.features(wave)
    slices, padded = partial_slices(wave.size, 160, rate, PartialsConfig())
    assert feats.shape == (len(slices), 160, 40) and feats.flags.c_contiguous
    loud = normalize_volume(wave, -30.0)
    mel = MelSpectrogram()(np.pad(loud, (0, max(0, padded - wave.size))))
    np.testing.assert_allclose(feats[-1], mel[slices[-1]], rtol=1e-6)
    partial = feats.mean(axis=1)
    partial /= np.linalg.norm(partial, axis=1, keepdims=True)
    expected = partial.mean(axis=0) / np.linalg.norm(partial.mean(axis=0))
    np.testing.assert_allclose(enc.embed(wave), expected, rtol=1e-5)
    waves = [wave, wave[: rate * 2], wave[rate : rate * 5]]
    batch = enc.embed_batch(waves)
    for w, row in zip(waves, batch, strict=True):
        np.testing.assert_allclose(row, enc.embed(w), atol=1e-6)


def test_loudness_is_raised_not_lowered(tmp_path: Path, speech: Clip) -> None:
    wave, _ = speech
    enc = OnnxSpeakerEncoder(tiny_spec(mean_over_time_model(tmp_path / "m.onnx")))
    quiet = (wave * 0.01).astype(np.float32)  # far below -30 dBFS: raised to it
    at_target = normalize_volume(wave, -30.0, increase_only=False)
    np.testing.assert_allclose(enc.features(quiet), enc.features(at_target), rtol=1e-3, atol=1e-9)
    loud = (wave / np.abs(wave).max()).astype(np.float32)  # above -30 dBFS: left alone
    np.testing.assert_allclose(enc.features(loud), flat_features(tmp_path, loud), rtol=1e-6)
    np.testing.assert_allclose(
        flat_features(tmp_path, quiet), 1e-4 * flat_features(tmp_path, wave), rtol=1e-3
    )


def flat_features(tmp_path: Path, wave: np.ndarray) -> np.ndarray:
    model = mean_over_time_model(tmp_path / "flat.onnx")
    return OnnxSpeakerEncoder(tiny_spec(model, volume_norm_dbfs=None)).features(wave)


def test_bft_layout_and_too_short(tmp_path: Path, speech: Clip) -> None:
    wave, _ = speech
    model = tmp_path / "m.onnx"
    mean_over_time_model(model)
    btf = OnnxSpeakerEncoder(tiny_spec(model))
    bft_model = mean_over_time_model(tmp_path / "bft.onnx", layout="BFT")
    bft = OnnxSpeakerEncoder(tiny_spec(bft_model, input_layout="BFT"))
    np.testing.assert_array_equal(bft.features(wave), btf.features(wave).transpose(0, 2, 1))
    np.testing.assert_allclose(bft.embed(wave), btf.embed(wave), atol=1e-6)
    with pytest.raises(AudioTooShort):
        btf.embed(np.zeros(800, np.float32))  # 6 frames < min_frames
    assert btf.features(wave[:2000]).shape == (1, 160, 40)  # short clips are zero-padded


def test_spec_validation_and_manifest_section(tmp_path: Path) -> None:
    model = mean_over_time_model(tmp_path / "m.onnx")
    with pytest.raises(ConfigurationError, match="go with feature 'mel-ge2e'"):
        SpeakerEncoderSpec(name="x", model_path=model, mel_params={"n_mels": 40})
    with pytest.raises(ConfigurationError, match="volume_norm_dbfs"):
        tiny_spec(model, volume_norm_dbfs=3.0)
    with pytest.raises(ConfigurationError, match="unknown mel parameter"):
        OnnxSpeakerEncoder(tiny_spec(model, mel_params={"nmels": 40}))
    with pytest.raises(ConfigurationError, match="features per frame"):
        OnnxSpeakerEncoder(tiny_spec(model, mel_params={"n_mels": 64}))
    section = {
        "name": "ge2e",
        "model_path": "m.onnx",
        "feature": "mel-ge2e",
        "mel_params": {"n_fft": 400, "hop_length": 160, "n_mels": 40},
        "partials": {"frames": 160, "per_second": 1.3, "min_coverage": 0.75},
        "volume_norm_dbfs": -30.0,
        "normalisation": "none",
    }
    spec = SpeakerEncoderSpec.from_mapping(section, base_dir=tmp_path)
    assert spec.model_path == model and OnnxSpeakerEncoder(spec).dim == 40


# --- the real GE2E network, exported from the resemblyzer wheel --------------------------------
@pytest.fixture(scope="module")
def ge2e_onnx(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if importlib.util.find_spec("resemblyzer") is None:
        pytest.skip("resemblyzer is not installed (pip install -e '.[bench]')")
    from bioverify.voice.export_ge2e import export_ge2e_onnx

    return export_ge2e_onnx(tmp_path_factory.mktemp("ge2e") / "ge2e.onnx")


def test_ge2e_export_matches_torch_on_real_partials(ge2e_onnx: Path, speech: Clip) -> None:
    import torch

    from bioverify.voice.export_ge2e import _network, resemblyzer_weights

    wave, _ = speech
    enc = OnnxSpeakerEncoder(ge2e_spec(ge2e_onnx))
    assert (enc.dim, enc.sample_rate) == (256, 16000)
    feats = enc.features(wave)
    with torch.no_grad():
        partials = _network(resemblyzer_weights())(torch.from_numpy(feats)).numpy()
    mean = partials.mean(axis=0)
    np.testing.assert_allclose(enc.embed(wave), mean / np.linalg.norm(mean), atol=1e-5)
    meta = onnx.load(str(ge2e_onnx)).metadata_props
    assert {p.key: p.value for p in meta}["license"] == "Apache-2.0"


def test_ge2e_separates_speakers(ge2e_onnx: Path, clip: object) -> None:
    from tests.voice.conftest import OTHER_SPEAKER_CLIP, SAME_SPEAKER_CLIP, SPEECH_CLIP

    enc = OnnxSpeakerEncoder(ge2e_spec(ge2e_onnx))
    a, b, c = (enc.embed(clip(p)[0]) for p in (SPEECH_CLIP, SAME_SPEAKER_CLIP, OTHER_SPEAKER_CLIP))  # type: ignore[operator]
    assert float(a @ b) > float(a @ c) + 0.1
