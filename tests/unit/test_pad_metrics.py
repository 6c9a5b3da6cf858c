"""Golden tests of the presentation-attack figures (ISO/IEC 30107-3): APCER, BPCER, APCER at a
BPCER target, and the summaries ``eval face-pad`` / ``eval voice-spoof`` print."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import pytest

from bioverify import metrics
from bioverify.v1 import liveness_pb2
from bioverify_admin.datasets import PadSample
from bioverify_admin.eval_pad import PadResult, summarise_face, summarise_voice

BONAFIDE = [float(v) for v in range(1, 21)]  # 1 .. 20
ATTACK = [0.5, 2.5, 5.5, 10.5, 15.5]
SCORES = BONAFIDE + ATTACK
LABELS = [1] * 20 + [0] * 5


def test_threshold_at_bpcer_golden() -> None:
    # 20 bona fide: BPCER 5 % allows 1 below the threshold -> 2; 10 % allows 2 -> 3
    assert metrics.threshold_at_bpcer(BONAFIDE, 0.05) == 2.0
    assert metrics.threshold_at_bpcer(BONAFIDE, 0.10) == 3.0
    assert metrics.threshold_at_bpcer(BONAFIDE, 0.0) == 1.0
    assert metrics.threshold_at_bpcer(BONAFIDE, 0.049) == 1.0
    assert metrics.threshold_at_bpcer(BONAFIDE, 1.0) == math.inf


def test_threshold_at_bpcer_with_ties() -> None:
    # BPCER <= 25 % of 4 allows one rejection, but any threshold above 0.2 rejects two
    assert metrics.threshold_at_bpcer([0.9, 0.2, 0.5, 0.2], 0.25) == 0.2
    with pytest.raises(ValueError):
        metrics.threshold_at_bpcer([], 0.05)


def test_apcer_at_bpcer_golden() -> None:
    assert metrics.apcer_at_bpcer(SCORES, LABELS, 0.05) == pytest.approx(4 / 5)  # >= 2
    assert metrics.apcer_at_bpcer(SCORES, LABELS, 0.10) == pytest.approx(3 / 5)  # >= 3
    assert metrics.apcer_at_bpcer(SCORES, LABELS, 0.50) == pytest.approx(1 / 5)  # >= 11
    assert metrics.apcer_at_bpcer(SCORES, LABELS, 1.0) == 0.0


def test_pad_error_rates_golden() -> None:
    # (APCER, BPCER) are error_rates_at's (FAR, FRR) with bona fide as the genuine class.
    apcer, bpcer = metrics.error_rates_at(SCORES, LABELS, 10.0)
    assert apcer == pytest.approx(2 / 5) and bpcer == 9 / 20
    assert metrics.error_rates_at(SCORES, LABELS, 0.0) == (1.0, 0.0)
    with pytest.raises(ValueError):
        metrics.error_rates_at([0.1, 0.2], [1, 1], 0.5)


def _result(label: str, score: float | None, attack: str = "", **checks: float) -> PadResult:
    sample = PadSample(Path(f"{label}-{score}.png"), label, attack or label)
    if score is None:
        return PadResult(sample, None, False, None, failure="NO_FACE")
    return PadResult(
        sample,
        score,
        score >= 0.5,
        0.5,
        {**checks, "info": 0.5},  # "info": an informational check, weight 0
        10.0,
        weights={**dict.fromkeys(checks, 1.0), "info": 0.0},
    )


def test_face_summary_golden() -> None:
    results = [
        _result("bonafide", 0.9, detail=0.8),
        _result("bonafide", 0.8, detail=0.7),
        _result("bonafide", 0.6, detail=0.3),
        _result("bonafide", None),  # failed bona fide: a BPCER error
        _result("print", 0.7, detail=0.1),  # accepted attack
        _result("print", 0.2, detail=0.2),
        _result("replay", None),  # failed attack: a correct rejection
        _result("replay", 0.1, detail=0.9),
    ]
    s = summarise_face(results)
    assert (s["n"], s["n_failed"], s["n_bonafide"], s["n_attack"]) == (8, 2, 4, 4)
    assert s["failures"] == {"NO_FACE": 2}
    assert s["bpcer"] == pytest.approx(1 / 4)
    assert s["bpcer_ci95"] == list(metrics.wilson_interval(1, 4))
    assert s["threshold"] == 0.5
    assert s["mean_latency_ms"] == pytest.approx(10.0)
    assert "mask" not in s and "deepfake" not in s
    assert s["print"]["n"] == 2 and s["print"]["apcer"] == pytest.approx(1 / 2)
    assert s["print"]["apcer_ci95"] == list(metrics.wilson_interval(1, 2))
    assert s["replay"]["apcer_ci95"] == [0.0, pytest.approx(0.657620, abs=1e-6)]
    assert s["replay"]["n_failed"] == 1 and s["replay"]["apcer"] == 0.0
    assert s["max_apcer"] == pytest.approx(1 / 2)
    # bona fide {0.9, 0.8, 0.6, -1}: BPCER <= 5 % or 10 % of 4 allows no rejection -> t = -1,
    # every attack passes (the failed replay scores -1 too)
    assert s["print"]["apcer_at_bpcer_5"] == 1.0
    assert s["replay"]["apcer_at_bpcer_10"] == 1.0
    # pooled: genuine {0.9, 0.8, 0.6, -1} vs attack {0.7, 0.2, -1, 0.1}; 16 pairs, wins 11.5
    assert s["auc"] == pytest.approx(11.5 / 16)
    detail = s["components"]["detail"]
    assert set(s["components"]) == {"detail"}
    assert s["informational_checks"] == ["info"]
    assert detail["n_missing"] == 0
    assert set(detail["apcer_at_bpcer_5"]) == {"print", "replay"}
    # detail alone: bona fide {0.8, 0.7, 0.3, -1}, print {0.1, 0.2}: separable but for the -1
    assert detail["eer_by_class"]["print"] == pytest.approx(
        metrics.eer([0.8, 0.7, 0.3, -1, 0.1, 0.2], [1, 1, 1, 1, 0, 0])
    )


def test_voice_summary_golden() -> None:
    results = [
        _result("bonafide", 0.9, aasist=0.9),
        _result("bonafide", 0.7, aasist=0.2),
        _result("spoof", 0.6, "TTS:A", aasist=0.1),  # accepted
        _result("spoof", 0.1, "TTS:A", aasist=0.95),
        _result("spoof", 0.3, "VC:B", aasist=0.3),
        _result("spoof", None, "VC:B"),
    ]
    s = summarise_voice(results)
    assert (s["n"], s["n_failed"]) == (6, 1)
    assert s["bpcer"] == 0.0
    assert s["apcer"] == pytest.approx(1 / 4)
    assert s["apcer_ci95"] == list(metrics.wilson_interval(1, 4))
    assert s["bpcer_ci95"] == [0.0, pytest.approx(0.657620, abs=1e-6)]
    assert s["apcer_by_attack"] == {"TTS:A": pytest.approx(1 / 2), "VC:B": 0.0}
    assert s["eer_by_attack"]["VC:B"] == 0.0  # bona fide {0.9, 0.7} above {0.3, -1}
    assert s["eer_by_attack"]["TTS:A"] == pytest.approx(
        metrics.eer([0.9, 0.7, 0.6, 0.1], [1, 1, 0, 0])
    )
    assert s["eer"] == 0.0 and s["auc"] == 1.0
    # per attack id, as per face attack class: AUC and APCER at BPCER 5 / 10 %
    for attack, spoof_scores in (("TTS:A", [0.6, 0.1]), ("VC:B", [0.3, -1.0])):
        scores, labels = [0.9, 0.7, *spoof_scores], [1, 1, 0, 0]
        assert s["auc_by_attack"][attack] == pytest.approx(metrics.auc(scores, labels))
        for target, key in ((0.05, "apcer_at_bpcer_5"), (0.10, "apcer_at_bpcer_10")):
            expected = metrics.apcer_at_bpcer(scores, labels, target)
            assert s[f"{key}_by_attack"][attack] == pytest.approx(expected)
    aasist = s["components"]["aasist"]
    assert set(aasist["eer_by_attack"]) == {"TTS:A", "VC:B"}
    # aasist alone, BPCER <= 5 % of 2 -> threshold 0.2: spoofs {0.1, 0.95, 0.3, -1} -> 2 of 4
    assert aasist["apcer_at_bpcer_5"] == pytest.approx(2 / 4)
    assert aasist["apcer_at_bpcer_5_by_attack"] == {"TTS:A": 0.5, "VC:B": 0.5}


def test_fitting_overlap_counts_samples_by_content(tmp_path: Path) -> None:
    from bioverify.packs import fitting_digest, fitting_digests, fitting_samples_block
    from bioverify_admin.eval_pad import _check, fitting_overlap

    seen, unseen, copy = tmp_path / "seen.jpg", tmp_path / "unseen.jpg", tmp_path / "copy.jpg"
    seen.write_bytes(b"fitted on this")
    unseen.write_bytes(b"never seen")
    copy.write_bytes(b"fitted on this")  # another name, the same content
    block = fitting_samples_block([seen.read_bytes()], "labels.tsv")
    assert block["digests"] == [fitting_digest(b"fitted on this")]
    fitted = fitting_digests({"fitting_samples": block})

    def refused(data: bytes) -> Callable[[], liveness_pb2.CheckLivenessResponse]:
        raise ValueError("not sent: the digest is taken from the bytes read all the same")

    samples = [
        PadSample(seen, "bonafide"),
        PadSample(unseen, "replay"),
        PadSample(copy, "bonafide"),
        PadSample(tmp_path / "missing.jpg", "bonafide"),
    ]
    results = [_check(sample, refused) for sample in samples]
    assert [bool(r.digest) for r in results] == [True, True, True, False]
    assert fitting_overlap(results, fitted) == 2
    assert fitting_overlap(results, None) is None
    assert fitting_digests({}) is None  # a pack that does not say
    assert fitting_digests({"fitting_samples": {**block, "digest": "md5"}}) is None


def test_shipped_liveness_packs_name_what_they_were_fitted_on() -> None:
    from bioverify.packs import builtin_manifest_data, fitting_digests

    for pack in ("face-liveness", "voice-antispoof"):
        data = builtin_manifest_data(pack)
        assert data is not None
        digests = fitting_digests(data)
        assert digests is not None and len(digests) > 100
        assert all(len(d) == 16 for d in digests)
    assert builtin_manifest_data("no-such-pack") is None


def test_fitting_samples_digest_tells_refits_apart() -> None:
    from bioverify.packs import fitting_samples_block, fitting_samples_digest

    shipped = {"id": "p", "fitting_samples": fitting_samples_block([b"a", b"b"], "x.tsv")}
    built = {**shipped, "build": {"parity_max_abs_diff": 1e-6}}  # same fit, other manifest
    refit = {**shipped, "fitting_samples": fitting_samples_block([b"a", b"c"], "x.tsv")}
    assert len(fitting_samples_digest(shipped)) == 64
    assert fitting_samples_digest(built) == fitting_samples_digest(shipped)
    assert fitting_samples_digest(refit) != fitting_samples_digest(shipped)
    assert fitting_samples_digest({"id": "p"}) == ""
