"""`bioverify-admin eval face-pad | voice-spoof`, `models build voice-antispoof` and `subjects
export` as a user runs them, against the real session service (face liveness and the voice
anti-spoofing pack built into its data directory)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bioverify.client import BioverifyClient
from bioverify.packs import PackCatalog, sha256_file
from tests.conftest import lfw

ADMIN = [sys.executable, "-m", "bioverify_admin.cli"]
FACE_CLASSES = ("print", "replay", "mask", "deepfake")


def admin(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*ADMIN, *args], capture_output=True, text=True, env=env, timeout=600)


def subset(source: Path, out: Path, every: int, keep: tuple[str, ...] = ()) -> list[list[str]]:
    """Every ``every``-th data row of ``source`` (plus every row labelled one of ``keep``),
    written to ``out``; the data folders are linked next to it so relative paths resolve."""
    header, *rows = source.read_text(encoding="utf-8").splitlines()
    chosen = [r for i, r in enumerate(rows) if i % every == 0 or r.split("\t")[1] in keep]
    out.write_text("\n".join([header, *chosen]) + "\n", encoding="utf-8")
    for folder in {Path(r.split("\t")[0]).parts[0] for r in chosen}:
        link = out.parent / folder
        if not link.exists():
            link.symlink_to(source.parent / folder)
    return [r.split("\t") for r in chosen]


def in_unit_interval(value: float) -> bool:
    return 0.0 <= value <= 1.0


def test_eval_face_pad(face_server: str, data_dir: Path, tmp_path: Path) -> None:
    labels = tmp_path / "pad.tsv"
    rows = subset(data_dir / "face_pad_labels.tsv", labels, 4, keep=("print", "mask"))
    (tmp_path / "corrupt.jpg").write_bytes(b"\xff\xd8\xff not really a jpeg")
    with labels.open("a", encoding="utf-8") as handle:
        handle.write("corrupt.jpg\tbonafide\tbroken file\tnobody\ttest\n")
    report = tmp_path / "face-pad.html"
    out = admin(
        "eval",
        "face-pad",
        str(labels),
        "--server",
        face_server,
        "--json",
        "--workers",
        "2",
        "--report",
        str(report),
    )
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    for key in ("n", "n_failed", "bpcer", "eer", "auc", "threshold", "mean_latency_ms"):
        assert key in result, key
    assert result["n"] == len(rows) + 1
    assert result["n_failed"] >= 1  # the corrupt image: not live, counted
    assert result["failures"].get("INVALID_IMAGE", 0) >= 1
    assert result["n_bonafide"] == sum(r[1] == "bonafide" for r in rows) + 1
    assert result["bpcer"] >= 1 / result["n_bonafide"]  # the corrupt bona fide is an error
    for key in ("bpcer", "eer", "auc", "threshold"):
        assert in_unit_interval(result[key]), key
    assert result["auc"] > 0.5  # better than chance even on this small subset
    assert result["mean_latency_ms"] > 0
    present = {r[1] for r in rows} - {"bonafide"}
    assert present == set(FACE_CLASSES)
    for name in FACE_CLASSES:
        block = result[name]
        assert block["n"] == sum(r[1] == name for r in rows)
        for key in ("apcer", "apcer_at_bpcer_5", "apcer_at_bpcer_10", "eer", "auc"):
            assert in_unit_interval(block[key]), (name, key)
        assert block["apcer_at_bpcer_10"] <= block["apcer_at_bpcer_5"]
        low, high = block["apcer_ci95"]
        assert 0 <= low <= block["apcer"] <= high <= 1 and high - low > 0, (name, low, high)
    low, high = result["bpcer_ci95"]
    assert 0 <= low <= result["bpcer"] <= high <= 1
    assert result["components"], "no per-check figures"
    for check in result["components"].values():
        assert in_unit_interval(check["eer"])
        assert set(check["apcer_at_bpcer_5"]) == set(FACE_CLASSES)
    text = report.read_text(encoding="utf-8")
    assert text.count("<img") >= 3
    assert "data:image/png;base64," in text
    assert "APCER at BPCER 5%" in text
    assert "failed sample(s) not shown" in text
    # Every DEV row was used to fit the shipped fusion (the corrupt file was not): in-sample.
    assert result["n_in_fitting_data"] == len(rows)
    assert "in-sample and optimistic" in result["in_sample_warning"]
    assert "warning:" in out.stderr and "face-liveness" in out.stderr


def test_eval_voice_spoof(face_server: str, data_dir: Path, tmp_path: Path) -> None:
    labels = tmp_path / "spoof.tsv"
    rows = subset(data_dir / "voice_spoof_labels.tsv", labels, 9)
    report = tmp_path / "voice.html"
    server = ("--server", face_server)
    out = admin("eval", "voice-spoof", str(labels), *server, "--json", "--report", str(report))
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["n"] == len(rows)
    for key in ("n_failed", "eer", "auc", "bpcer", "apcer", "threshold", "mean_latency_ms"):
        assert key in result, key
    for key in ("eer", "auc", "bpcer", "apcer", "threshold"):
        assert in_unit_interval(result[key]), key
    for rate in ("bpcer", "apcer"):
        low, high = result[f"{rate}_ci95"]
        assert 0 <= low <= result[rate] <= high <= 1, rate
    attacks = {r[2] for r in rows if r[1] == "spoof"}
    assert set(result["eer_by_attack"]) == attacks
    assert all(in_unit_interval(v) for v in result["eer_by_attack"].values())
    assert "aasist" in result["components"]
    assert set(result["components"]["aasist"]["eer_by_attack"]) == attacks
    assert result["n_in_fitting_data"] == len(rows) and "in-sample" in out.stderr
    text = report.read_text(encoding="utf-8")
    assert text.count("<img") >= 3
    assert "Per attack id" in text


def test_eval_voice_spoof_telephony(face_server: str, data_dir: Path, tmp_path: Path) -> None:
    """--telephony sends every clip as 8 kHz G.711 mu-law: the telephone-band model scores
    them and genuine callers are not all rejected (as they were by the wideband model)."""
    labels = tmp_path / "spoof.tsv"
    rows = subset(data_dir / "voice_spoof_labels.tsv", labels, 9)
    server = ("--server", face_server)
    out = admin("eval", "voice-spoof", str(labels), *server, "--json", "--telephony")
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["telephony"] is True
    assert result["n"] == len(rows) and result["n_failed"] == 0
    assert result["bpcer"] <= 0.5  # measured on the whole set: 2.8 % (1 of 36)
    assert result["auc"] > 0.5
    assert "bandwidth" in result["informational_checks"]
    assert "hf_texture" not in result["components"]  # nothing above 4 kHz is scored


def test_eval_voice_spoof_without_pack_says_how_to_build_it(
    models_dir: Path, data_dir: Path, tmp_path: Path
) -> None:
    """No --server: a throwaway service is started; with no anti-spoofing pack it refuses."""
    labels = tmp_path / "spoof.tsv"
    subset(data_dir / "voice_spoof_labels.tsv", labels, 50)
    env = {k: v for k, v in os.environ.items() if not k.startswith("BIOVERIFY_")}
    env.update(
        BIOVERIFY_MODEL_DIR=str(models_dir),
        BIOVERIFY_DATA_DIR=str(tmp_path / "data"),
        BIOVERIFY_VOICE_ANTISPOOF_PACK="none",
        BIOVERIFY_FACE_LIVENESS_PACK="none",
        ORT_DISABLE_TELEMETRY="1",
    )
    out = admin("eval", "voice-spoof", str(labels), "--json", env=env)
    assert out.returncode != 0
    assert out.stdout == ""
    assert "bioverify-admin models build voice-antispoof" in out.stderr


def test_models_build_voice_antispoof(models_dir: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    out = admin(
        "models",
        "build",
        "voice-antispoof",
        "--model-dir",
        str(models_dir),
        "--data-dir",
        str(data),
        "--json",
    )
    assert out.returncode == 0, out.stderr
    built = json.loads(out.stdout)
    assert built["id"] == "voice-antispoof"
    assert Path(built["directory"]) == data / "packs" / "voice-antispoof"
    (onnx,) = built["files"]
    assert onnx["path"].endswith(".onnx")
    assert onnx["sha256"] == sha256_file(Path(onnx["path"]))
    assert onnx["matches_manifest"] is True
    assert 0 <= built["parity_max_abs_diff"] < 1e-4
    pack = PackCatalog(models_dir, data / "packs").get("voice-antispoof")
    assert pack.root == data / "packs" / "voice-antispoof"  # the built one overrides
    assert "restart the service" in out.stderr


def test_subjects_export(face_server: str, data_dir: Path, tmp_path: Path) -> None:
    tenant = "export-test"
    with BioverifyClient(face_server) as client:
        client.wait_until_serving(timeout=60)
        client.enroll_face(
            "exp-face", [lfw("Roger_Federer", 13).read_bytes()], tenant=tenant, metadata={"a": "1"}
        )
        clip = sorted((data_dir / "speaker" / "audio").rglob("*.flac"))[0]
        client.enroll_voice("exp-voice", [client.audio(clip.read_bytes())], tenant=tenant)
    target = tmp_path / "subjects.jsonl"
    server = ("--server", face_server)
    out = admin("subjects", "export", "--tenant", tenant, *server, "--out", str(target))
    assert out.returncode == 0, out.stderr
    assert "exported 2 subject(s)" in out.stderr
    lines = target.read_text(encoding="utf-8").splitlines()
    subjects = {s["subject_id"]: s for s in map(json.loads, lines)}
    assert set(subjects) == {"exp-face", "exp-voice"}
    face, voice = subjects["exp-face"], subjects["exp-voice"]
    assert face["tenant"] == tenant and face["metadata"] == {"a": "1"}
    assert face["modalities"] == ["face"] and voice["modalities"] == ["voice"]
    (template,) = face["templates"]
    assert template["sample_count"] == 1 and template["model"]
    assert template["created_at"] and face["created_at"]
    assert set(face) == {
        "subject_id",
        "tenant",
        "metadata",
        "modalities",
        "templates",
        "created_at",
        "updated_at",
    }
    assert set(template) == {"modality", "model", "sample_count", "created_at", "updated_at"}
    assert "embedding" not in target.read_text(encoding="utf-8").lower()
    # stdout without --out: the same lines
    out = admin("subjects", "export", "--tenant", tenant, "--server", face_server)
    assert out.returncode == 0, out.stderr
    assert sorted(out.stdout.splitlines()) == sorted(lines)


@pytest.mark.parametrize("command", ["face-pad", "voice-spoof"])
def test_eval_pad_rejects_a_bad_label(command: str, tmp_path: Path) -> None:
    labels = tmp_path / "bad.tsv"
    labels.write_text("path\tlabel\tattack_id\nx.png\tcartoon\t-\n", encoding="utf-8")
    out = admin("eval", command, str(labels), "--server", "127.0.0.1:1")
    assert out.returncode == 2
    assert "cartoon" in out.stderr
