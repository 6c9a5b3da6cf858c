"""Face benchmark, all measured side by side in one run on the same pairs:

1. the service's pipeline in-process, per stage (decode, detect, align, embed);
2. CompareFaces over gRPC against a real server on loopback (p50 / p95);
3. the raw models in a bare script (insightface's SCRFD loader + MobileFaceNet on onnxruntime,
   no service code), at a fixed 640x640 and a fixed 320x320 detector input;
4. the dlib pipeline that `face_recognition` users run (HOG detector upsampled once, 5-point
   landmarks, ResNet descriptor, Euclidean distance with tolerance 0.6).

Prints a table and writes JSON to bench/results/face_bench.json.

    python bench/face_bench.py [--pairs ../shared/data/face_pairs.tsv] [--limit N]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

os.environ["ORT_DISABLE_TELEMETRY"] = "1"

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("BIOVERIFY_SHARED_DIR", REPO.parent / "shared"))

from bioverify import metrics  # noqa: E402
from bioverify.client import BioverifyClient, BioverifyClientError  # noqa: E402
from bioverify.errors import BioverifyError  # noqa: E402
from bioverify.face.align import norm_crop  # noqa: E402
from bioverify.face.ports import ImageBGR  # noqa: E402
from bioverify.packs import PackCatalog  # noqa: E402
from bioverify.server.app import build, build_face_pipeline  # noqa: E402
from bioverify.settings import Settings  # noqa: E402
from bioverify_admin.datasets import Pair, read_face_pairs  # noqa: E402
from bioverify_admin.local_server import local_server  # noqa: E402

MOBILEFACENET = SHARED / "models" / "mobilefacenet_foamliu" / "MobileFaceNet.onnx"
SCRFD = SHARED / "models" / "insightface_buffalo_m" / "det_2.5g.onnx"
YUNET = SHARED / "models" / "opencv_yunet" / "face_detection_yunet_2023mar.onnx"


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def accuracy_block(scores: list[float], labels: list[bool], threshold: float) -> dict[str, float]:
    s = np.asarray(scores)
    y = np.asarray(labels)
    best = max(metrics.accuracy_at(s, y, t) for t in np.unique(s))
    return {
        "eer": metrics.eer(s, y),
        "auc": metrics.auc(s, y),
        "accuracy_at_threshold": metrics.accuracy_at(s, y, threshold),
        "best_accuracy": best,
        "threshold": threshold,
    }


# -- 1. service pipeline in-process, per stage --------------------------------------------------
def bench_stages(settings: Settings, pairs: list[Pair]) -> dict[str, Any]:
    pack = PackCatalog(settings.model_dir, settings.data_dir / "packs").choose("face", "auto")
    pipeline = build_face_pipeline(settings, pack)
    stages: dict[str, list[float]] = {"decode": [], "detect": [], "align": [], "embed": []}
    paths = sorted({p.path_a for p in pairs} | {p.path_b for p in pairs})
    for path in paths:
        try:
            sample = pipeline.analyse(path.read_bytes())
        except BioverifyError:
            continue  # an image without a usable face has no full timing
        for key in stages:
            stages[key].append(sample.timings_ms[key])
    return {
        "pack": pack.id,
        "n_images": len(stages["embed"]),
        "mean_ms": {k: statistics.fmean(v) for k, v in stages.items()},
        "p95_ms": {k: pct(v, 95) for k, v in stages.items()},
        "total_mean_ms": sum(statistics.fmean(v) for v in stages.values()),
    }


# -- 2. CompareFaces over gRPC ------------------------------------------------------------------
def bench_grpc(settings: Settings, pairs: list[Pair]) -> dict[str, Any]:
    app = build(settings)
    app.start()
    try:
        with BioverifyClient(f"127.0.0.1:{app.port}", timeout=60, retries=0) as client:
            client.wait_until_serving()
            threshold = client.service_info().models[0].operating_points
            latencies, scores, labels, failed = [], [], [], 0
            for pair in pairs:
                a, b = pair.path_a.read_bytes(), pair.path_b.read_bytes()
                t0 = time.perf_counter()
                try:
                    reply = client.compare_faces(a, b)
                except BioverifyClientError:
                    failed += 1
                    scores.append(-1.0)
                    labels.append(pair.same)
                    continue
                latencies.append((time.perf_counter() - t0) * 1e3)
                scores.append(reply.match.similarity)
                labels.append(pair.same)
                th = reply.match.threshold
    finally:
        app.stop(grace=1.0)
    default = next(p for p in threshold if p.is_default).threshold
    return {
        "n_pairs": len(pairs),
        "n_failed": failed,
        "p50_ms": pct(latencies, 50),
        "p95_ms": pct(latencies, 95),
        "mean_ms": statistics.fmean(latencies),
        **accuracy_block(scores, labels, th if latencies else default),
    }


# -- 2b. VerifyFace with and without liveness ---------------------------------------------------
def bench_verify_liveness(settings: Settings, pairs: list[Pair]) -> dict[str, Any]:
    """VerifyFace latency with require_liveness off and on, interleaved request by request so
    both see the same machine load; the issue's goal is liveness adding at most 30%.

    The service runs in its own process, as deployed: in this process the client's and the
    server's Python threads would compete for one GIL and two cores, and liveness, which runs
    beside the embedding, would look several times dearer than it is."""
    plain: list[float] = []
    live: list[float] = []
    with (
        local_server(extra_env={"BIOVERIFY_MODEL_DIR": str(settings.model_dir)}) as target,
        BioverifyClient(target, timeout=60, retries=0) as client,
    ):
        client.wait_until_serving()
        for i, pair in enumerate(p for p in pairs if p.same):
            subject = f"bench-{i}"
            try:
                client.enroll_face(subject, [pair.path_a.read_bytes()])
            except BioverifyClientError:
                continue
            probe = pair.path_b.read_bytes()
            for require, sink in ((False, plain), (True, live)):
                t0 = time.perf_counter()
                try:
                    client.verify_face(subject, probe, require_liveness=require)
                except BioverifyClientError:
                    continue
                sink.append((time.perf_counter() - t0) * 1e3)
    return {
        "n_requests": len(plain),
        "without_liveness_p50_ms": pct(plain, 50),
        "with_liveness_p50_ms": pct(live, 50),
        "without_liveness_mean_ms": statistics.fmean(plain),
        "with_liveness_mean_ms": statistics.fmean(live),
        "liveness_overhead_p50": pct(live, 50) / pct(plain, 50) - 1.0,
    }


# -- 3. raw models in a bare script -------------------------------------------------------------
class RawPipeline:
    """What a developer would write with the two model files and nothing of bioverify."""

    def __init__(self, det_size: int) -> None:
        import onnxruntime as ort
        from insightface.model_zoo import get_model

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        self.det = get_model(str(SCRFD), providers=["CPUExecutionProvider"])
        self.det.prepare(ctx_id=-1, input_size=(det_size, det_size), det_thresh=0.5)
        self.rec = ort.InferenceSession(
            str(MOBILEFACENET), opts, providers=["CPUExecutionProvider"]
        )
        self.input_name = self.rec.get_inputs()[0].name
        self.mean = np.array([0.485, 0.456, 0.406], np.float32)
        self.std = np.array([0.229, 0.224, 0.225], np.float32)

    def embed(self, path: Path) -> np.ndarray | None:
        img = cast("ImageBGR | None", cv2.imread(str(path)))
        assert img is not None, path
        bboxes, kpss = self.det.detect(img, max_num=1, metric="default")
        if bboxes.shape[0] == 0:
            return None
        crop = norm_crop(img, kpss[0])
        x = (crop[:, :, ::-1].astype(np.float32) / 255.0 - self.mean) / self.std
        out = self.rec.run(None, {self.input_name: x.transpose(2, 0, 1)[None]})[0][0]
        embedding: np.ndarray = out / np.linalg.norm(out)
        return embedding


class RawYunetPipeline(RawPipeline):
    """The default pack's models in a bare script: OpenCV's FaceDetectorYN + MobileFaceNet."""

    def __init__(self) -> None:
        super().__init__(320)
        self.yunet = cv2.FaceDetectorYN.create(str(YUNET), "", (320, 320), 0.6, 0.3, 5000)

    def embed(self, path: Path) -> np.ndarray | None:
        img = cast("ImageBGR | None", cv2.imread(str(path)))
        assert img is not None, path
        self.yunet.setInputSize((img.shape[1], img.shape[0]))
        _, faces = self.yunet.detect(img)
        if faces is None or len(faces) == 0:
            return None
        best = max(faces, key=lambda f: f[2] * f[3])
        crop = norm_crop(img, best[4:14].reshape(5, 2))
        x = (crop[:, :, ::-1].astype(np.float32) / 255.0 - self.mean) / self.std
        out = self.rec.run(None, {self.input_name: x.transpose(2, 0, 1)[None]})[0][0]
        embedding: np.ndarray = out / np.linalg.norm(out)
        return embedding


def bench_embedder(
    name: str,
    embed: Callable[[Path], np.ndarray | None],
    pairs: list[Pair],
    threshold: float,
    similarity: Callable[[np.ndarray, np.ndarray], float],
) -> dict[str, Any]:
    latencies, scores, labels, failed = [], [], [], 0
    for pair in pairs:
        t0 = time.perf_counter()
        ea, eb = embed(pair.path_a), embed(pair.path_b)
        latencies.append((time.perf_counter() - t0) * 1e3)
        labels.append(pair.same)
        if ea is None or eb is None:
            failed += 1
            scores.append(-10.0)
            continue
        scores.append(similarity(ea, eb))
    return {
        "name": name,
        "n_pairs": len(pairs),
        "n_failed": failed,
        "pair_p50_ms": pct(latencies, 50),
        "pair_p95_ms": pct(latencies, 95),
        "pair_mean_ms": statistics.fmean(latencies),
        **accuracy_block(scores, labels, threshold),
    }


# -- 4. the face_recognition / dlib pipeline ----------------------------------------------------
class DlibFaceRecognition:
    """face_recognition.face_locations(img) (HOG, upsample 1) + face_encodings(img, model='small')
    + face_distance with tolerance 0.6, written against dlib directly."""

    def __init__(self) -> None:
        import dlib
        import face_recognition_models as frm

        self.detector = dlib.get_frontal_face_detector()
        self.sp = dlib.shape_predictor(frm.pose_predictor_five_point_model_location())
        self.rec = dlib.face_recognition_model_v1(frm.face_recognition_model_location())

    def embed(self, path: Path) -> np.ndarray | None:
        bgr = cv2.imread(str(path))
        assert bgr is not None, path
        rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        rects = self.detector(rgb, 1)
        if len(rects) == 0:
            return None
        rect = max(rects, key=lambda r: r.area())
        shape = self.sp(rgb, rect)
        return np.asarray(self.rec.compute_face_descriptor(rgb, shape, 1))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pairs", type=Path, default=SHARED / "data" / "face_pairs.tsv")
    parser.add_argument("--limit", type=int, default=0)
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "face_bench.json")
    args = parser.parse_args()
    pairs = read_face_pairs(args.pairs)
    if args.limit:
        pairs = pairs[: args.limit]

    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(
            port=0, data_dir=Path(tmp), model_dir=SHARED / "models", log_level="WARNING"
        )
        results: dict[str, Any] = {"pairs": str(args.pairs), "n_pairs": len(pairs)}
        results["stages"] = bench_stages(settings, pairs)
        results["grpc_compare"] = bench_grpc(settings, pairs)
        results["verify_liveness"] = bench_verify_liveness(settings, pairs)
    service_threshold = results["grpc_compare"]["threshold"]
    cosine = lambda a, b: float(np.dot(a, b))  # noqa: E731
    results["raw_yunet"] = bench_embedder(
        "raw YuNet (OpenCV) + MobileFaceNet",
        RawYunetPipeline().embed,
        pairs,
        service_threshold,
        cosine,
    )
    results["raw_320"] = bench_embedder(
        "raw SCRFD@320 + MobileFaceNet", RawPipeline(320).embed, pairs, service_threshold, cosine
    )
    results["raw_640"] = bench_embedder(
        "raw SCRFD@640 + MobileFaceNet", RawPipeline(640).embed, pairs, service_threshold, cosine
    )
    neg_euclid = lambda a, b: -float(np.linalg.norm(a - b))  # noqa: E731
    results["dlib"] = bench_embedder(
        "face_recognition (dlib)", DlibFaceRecognition().embed, pairs, -0.6, neg_euclid
    )

    g = results["grpc_compare"]
    best_raw = min(r["pair_p50_ms"] for k, r in results.items() if k.startswith("raw_"))
    results["ratios"] = {
        "service_p50_over_raw_same_models_p50": g["p50_ms"] / results["raw_yunet"]["pair_p50_ms"],
        "service_p50_over_raw_scrfd320_p50": g["p50_ms"] / results["raw_320"]["pair_p50_ms"],
        "service_p50_over_best_raw_p50": g["p50_ms"] / best_raw,
        "dlib_p50_over_service_p50": results["dlib"]["pair_p50_ms"] / g["p50_ms"],
    }
    print_table(results)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2, default=float) + "\n")
    print(f"\nwritten to {args.out}")
    return 0


def print_table(r: dict[str, Any]) -> None:
    s = r["stages"]
    print(f"\nService pipeline stages ({s['pack']}, {s['n_images']} images), mean / p95 ms")
    for k in ("decode", "detect", "align", "embed"):
        print(f"  {k:<8} {s['mean_ms'][k]:7.2f} / {s['p95_ms'][k]:7.2f}")
    print(f"  total    {s['total_mean_ms']:7.2f}")
    print(
        f"\n{'pipeline (per pair = 2 images)':<34}{'p50 ms':>9}{'p95 ms':>9}{'failed':>8}"
        f"{'EER':>8}{'AUC':>8}{'acc@thr':>9}{'best acc':>9}"
    )
    rows = [("bioverify CompareFaces (gRPC)", r["grpc_compare"], "p50_ms", "p95_ms")]
    for key in ("raw_yunet", "raw_320", "raw_640", "dlib"):
        rows.append((r[key]["name"], r[key], "pair_p50_ms", "pair_p95_ms"))
    for name, row, p50, p95 in rows:
        print(
            f"{name:<34}{row[p50]:9.1f}{row[p95]:9.1f}{row['n_failed']:8d}{row['eer']:8.3f}"
            f"{row['auc']:8.4f}{row['accuracy_at_threshold']:9.3f}{row['best_accuracy']:9.3f}"
        )
    v = r["verify_liveness"]
    print(
        f"\nVerifyFace p50 ms ({v['n_requests']} requests, interleaved): without liveness "
        f"{v['without_liveness_p50_ms']:.1f}, with liveness {v['with_liveness_p50_ms']:.1f} "
        f"(+{100 * v['liveness_overhead_p50']:.0f}%)"
    )
    print("\nratios:", ", ".join(f"{k} = {v:.2f}" for k, v in r["ratios"].items()))


if __name__ == "__main__":
    sys.exit(main())
