"""HTML evaluation reports on seeded synthetic scores: self-contained, escaped, complete."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from bioverify import metrics
from bioverify.scoring import OperatingPoint
from bioverify_admin import report_html

WHEN = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
THRESHOLD = 0.3625


def _verification_scores() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(7)
    genuine = rng.normal(0.62, 0.12, 300)
    impostor = rng.normal(0.08, 0.10, 2000)
    scores = np.concatenate([genuine, impostor])
    labels = np.concatenate([np.ones(300, bool), np.zeros(2000, bool)])
    return scores, labels


def _assert_self_contained(text: str) -> None:
    assert "http://" not in text
    assert "https://" not in text
    assert 'src="/' not in text
    assert "<script" not in text.lower()
    assert "<link" not in text.lower()
    assert "url(" not in text
    assert all(
        src.startswith("data:image/png;base64,") for src in re.findall(r'src="([^"]*)"', text)
    )


@pytest.fixture(scope="module")
def verification_html(tmp_path_factory: pytest.TempPathFactory) -> str:
    scores, labels = _verification_scores()
    out = tmp_path_factory.mktemp("report") / "face.html"
    report_html.write_verification_report(
        out,
        title="Face verification <dev> & co",
        scores=scores,
        labels=labels,
        threshold=THRESHOLD,
        operating_point="fmr_1e-3",
        summary={"n_pairs": 2300, "eer": 0.0123, "failures": {"NO_FACE": 2}, "auc": float("nan")},
        operating_points=[
            OperatingPoint("fmr_1e-2", 1e-2, 0.3),
            OperatingPoint("fmr_1e-3", 1e-3, THRESHOLD),
        ],
        extra_tables=[("Per dataset", [{"dataset": "lfw", "pairs": 2300}])],
        generated=WHEN,
    )
    return out.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def pad_html(tmp_path_factory: pytest.TempPathFactory) -> str:
    out = tmp_path_factory.mktemp("report") / "pad.html"
    _write_pad(out)
    return out.read_text(encoding="utf-8")


def _write_pad(out: Path) -> None:
    rng = np.random.default_rng(3)
    groups = {"bonafide": (0.8, 120), "print": (0.2, 60), "replay": (0.5, 40), "3d-mask": (0.6, 8)}
    scores = np.concatenate([rng.normal(mu, 0.12, n) for mu, n in groups.values()])
    labels = [name for name, (_, n) in groups.items() for _ in range(n)]
    report_html.write_pad_report(
        out,
        title="Face PAD <eval>",
        scores=scores,
        labels=labels,
        threshold=0.55,
        summary={"n_samples": len(labels)},
        generated=WHEN,
    )


def test_verification_report_is_self_contained(verification_html: str) -> None:
    _assert_self_contained(verification_html)
    assert verification_html.count("data:image/png;base64,") == 3  # ROC, DET, histograms


def test_verification_report_escapes_and_shows_title_threshold_tables(
    verification_html: str,
) -> None:
    text = verification_html
    assert "<title>Face verification &lt;dev&gt; &amp; co</title>" in text
    assert "<dev>" not in text
    assert f"{THRESHOLD:.4f}" in text
    assert "2026-01-02 03:04:05 UTC" in text
    for expected in ("fmr_1e-2", "fmr_1e-3 (used)", "NO_FACE: 2", "Per dataset", "lfw", "n/a"):
        assert expected in text


def test_operating_point_table_measures_the_rates(verification_html: str) -> None:
    scores, labels = _verification_scores()
    false_matches = int(np.sum(scores[~labels] >= THRESHOLD))
    false_non_matches = int(np.sum(scores[labels] < THRESHOLD))
    assert false_matches > 0
    assert false_non_matches > 0
    assert f"({false_matches}/2000; 95% CI " in verification_html
    assert f"({false_non_matches}/300; 95% CI " in verification_html


def test_every_rate_carries_its_wilson_interval(pad_html: str, verification_html: str) -> None:
    pattern = r"\((\d+)/(\d+); 95% CI ([\d.e-]+)\u2013([\d.e-]+)%\)"
    for text in (pad_html, verification_html):
        found = re.findall(pattern, text)
        assert len(found) >= 4
        for count, n, low, high in found:
            expected = [100 * v for v in metrics.wilson_interval(int(count), int(n))]
            assert [float(low), float(high)] == pytest.approx(expected, rel=1e-2, abs=1e-9)


def test_nan_threshold_and_failed_pairs_are_reported_not_plotted(tmp_path: Path) -> None:
    scores = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1, -1.0])
    labels = np.array([1, 1, 1, 1, 0, 1, 0, 0, 0, 1], bool)
    failed = scores == -1.0
    out = tmp_path / "nan.html"
    report_html.write_verification_report(
        out,
        title="no threshold",
        scores=scores,
        labels=labels,
        threshold=float("nan"),
        operating_point="",
        summary={"threshold": float("nan")},
        failed=failed,
        generated=WHEN,
    )
    text = out.read_text(encoding="utf-8")
    assert "threshold n/a" in text
    assert "1 failed comparison(s) not shown" in text


def test_pad_report_is_self_contained(pad_html: str) -> None:
    _assert_self_contained(pad_html)
    assert pad_html.count("data:image/png;base64,") == 3  # DET, pooled and per-class histograms
    assert "Face PAD &lt;eval&gt;" in pad_html
    assert "0.5500" in pad_html


def test_pad_report_lists_each_attack_class(pad_html: str) -> None:
    for name in ("print", "replay", "3d-mask"):
        assert f"<td>{name}</td>" in pad_html
    for column in ("APCER at threshold", "APCER at BPCER 5%", "APCER at BPCER 10%", "BPCER"):
        assert column in pad_html


def test_output_is_deterministic_apart_from_the_timestamp(pad_html: str, tmp_path: Path) -> None:
    again = tmp_path / "again.html"
    _write_pad(again)
    assert again.read_text(encoding="utf-8") == pad_html


def test_pad_rates_golden() -> None:
    bonafide = np.arange(1.0, 21.0)  # 1 .. 20
    attack = np.array([0.5, 2.5, 5.5, 10.5, 15.5])
    labels = ["bonafide"] * 20 + ["print"] * 5
    bpcer, (rates,) = metrics.pad_rates(np.concatenate([bonafide, attack]), labels, 10.0)
    assert bpcer == pytest.approx(9 / 20)
    assert rates.attack_class == "print"
    assert rates.n == 5
    assert rates.apcer == pytest.approx(2 / 5)
    # BPCER 5 %: at most 1 of 20 bona fide below -> threshold 2; 10 %: threshold 3
    assert metrics.threshold_at_bpcer(bonafide, 0.05) == 2.0
    assert metrics.threshold_at_bpcer(bonafide, 0.10) == 3.0
    assert rates.apcer_at_bpcer_5 == pytest.approx(4 / 5)
    assert rates.apcer_at_bpcer_10 == pytest.approx(3 / 5)


def test_pad_rates_need_bona_fide_and_attacks() -> None:
    with pytest.raises(ValueError, match="bonafide"):
        metrics.pad_rates([0.1, 0.2], ["print", "print"], 0.5)
    with pytest.raises(ValueError, match="attack class"):
        metrics.pad_rates([0.1, 0.2], ["bonafide", "bonafide"], 0.5)


def test_identification_curve_golden() -> None:
    fpir, fnir = report_html.identification_curve([0.9, 0.8, 0.3], [True, True, False], [0.5, 0.2])
    # thresholds: inf, 0.9, 0.8, 0.5, 0.3, 0.2
    np.testing.assert_allclose(fpir, [0, 0, 0, 0.5, 0.5, 1])
    np.testing.assert_allclose(fnir, [1, 2 / 3, 1 / 3, 1 / 3, 1 / 3, 1 / 3])


def test_identification_report(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    mated = rng.normal(0.6, 0.1, 150)
    hits = rng.random(150) > 0.05
    nonmated = rng.normal(0.25, 0.08, 60)
    out = tmp_path / "identify.html"
    report_html.write_identification_report(
        out,
        title="Face identification",
        mated_scores=mated,
        mated_hits=hits,
        nonmated_scores=nonmated,
        threshold=0.41,
        summary={"rank1": 0.95},
        generated=WHEN,
    )
    text = out.read_text(encoding="utf-8")
    _assert_self_contained(text)
    assert text.count("data:image/png;base64,") == 2
    assert "0.4100" in text
    assert "FNIR" in text


@pytest.mark.parametrize(("lo", "hi"), [(1e-3, 0.5), (1e-4, 0.5), (1e-3, 0.95), (1e-2, 0.5)])
def test_det_ticks_stay_inside_and_apart(lo: float, hi: float) -> None:
    ticks = report_html._det_ticks(lo, hi)
    assert ticks[0] == lo
    assert ticks[-1] in (0.5, 0.95)
    assert all(lo <= t <= hi for t in ticks)
    assert len(ticks) >= 5
