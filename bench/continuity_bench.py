"""Identity continuity of live captures: how often it rejects one person, how often it catches
a splice, and what it costs beside the rest of a multi-frame liveness check.

Protocol (reproducible, no randomness):

- faces are embedded by the service's own face pipeline, in-process (decode, detect, align,
  embed): the LFW images of face_images.tsv and the 48 webcam frames of the DEV PAD set
  (3 people; their live and replayed frames are one identity each);
- **one-person bursts**: for each identity, every window of ``--burst`` consecutive images
  (sorted by file name). LFW photos of a person span years, lighting and pose, so their pass
  rate is a pessimistic stand-in for frames of one capture session; the webcam windows are
  frames of one recording, sampled 0.5-5 s apart;
- **spliced bursts**: each one-person burst with its middle frame replaced by the first image
  of every other identity (the attacker's own face in a victim's burst, or a victim's photo
  sent with the attacker's live capture: one face of another person among the frames);
- the check is ``identity_continuity`` at the face pack's most permissive verification
  threshold, exactly what CheckLiveness(frames) and VerifyFace(live_capture) run;
- cost: per frame, the face embedding (what the check adds) against the face liveness
  checker's measurement (PAD network and signals), timed in one run.

Prints a table and writes JSON to bench/results/continuity_bench.json.

    python bench/continuity_bench.py [--burst 4] [--face-pack auto]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

os.environ["ORT_DISABLE_TELEMETRY"] = "1"

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("BIOVERIFY_SHARED_DIR", REPO.parent / "shared"))
DATA = SHARED / "data"

from bioverify.errors import BioverifyError  # noqa: E402
from bioverify.face.pipeline import FacePipeline, PreparedFace  # noqa: E402
from bioverify.liveness.continuity import identity_continuity  # noqa: E402
from bioverify.server.app import (  # noqa: E402
    build_face_pipeline,
    build_liveness_gate,
    choose_face_pack,
    liveness_packs,
)
from bioverify.settings import Settings  # noqa: E402
from bioverify_admin.datasets import read_identity_images  # noqa: E402


def lfw_images() -> dict[str, list[Path]]:
    people: dict[str, list[Path]] = defaultdict(list)
    for image in read_identity_images(DATA / "face_images.tsv"):
        people[image.identity].append(image.path)
    return {k: sorted(v) for k, v in people.items()}


def webcam_frames() -> dict[str, list[Path]]:
    root = DATA / "face_pad" / "webcam_replay"
    return {d.name: sorted(d.glob("*.png")) for d in sorted(root.iterdir()) if d.is_dir()}


def embed_all(
    pipeline: FacePipeline, people: dict[str, list[Path]]
) -> tuple[dict[str, np.ndarray], dict[str, list[PreparedFace]], int]:
    embeddings: dict[str, np.ndarray] = {}
    prepared_of: dict[str, list[PreparedFace]] = {}
    failed = 0
    for identity, paths in people.items():
        prepared = []
        for path in paths:
            try:
                prepared.append(pipeline.prepare(path.read_bytes()))
            except BioverifyError:  # no face, several faces: counted, not fatal
                failed += 1
        if prepared:
            samples = pipeline.embed(prepared)
            embeddings[identity] = np.array([s.embedding for s in samples])
            prepared_of[identity] = prepared
    return embeddings, prepared_of, failed


def bursts(embeddings: dict[str, np.ndarray], size: int, threshold: float) -> dict[str, Any]:
    """Pass rate of one-person windows, catch rate of their one-frame splices."""
    firsts = {k: v[0] for k, v in embeddings.items()}
    genuine_pass = genuine_n = splice_caught = splice_n = 0
    lowest_genuine: list[float] = []
    for identity, vectors in embeddings.items():
        for start in range(0, len(vectors) - size + 1):
            window = vectors[start : start + size]
            result = identity_continuity(window, threshold)
            genuine_n += 1
            genuine_pass += result.passed
            lowest_genuine.append(result.lowest_similarity)
            middle = size // 2
            for other, face in firsts.items():
                if other == identity:
                    continue
                spliced = window.copy()
                spliced[middle] = face
                splice_n += 1
                splice_caught += not identity_continuity(spliced, threshold).passed
    return {
        "identities": len(embeddings),
        "one_person_bursts": genuine_n,
        "one_person_pass_rate": genuine_pass / genuine_n if genuine_n else None,
        "one_person_lowest_similarity_p5": float(np.percentile(lowest_genuine, 5))
        if lowest_genuine
        else None,
        "spliced_bursts": splice_n,
        "splice_catch_rate": splice_caught / splice_n if splice_n else None,
    }


def cost(settings: Settings, pipeline: FacePipeline, frames: list[PreparedFace]) -> dict[str, Any]:
    gate = build_liveness_gate(settings, liveness_packs(settings))
    if gate.face is None:
        return {"skipped": "no face liveness pack installed"}
    checker = gate.face
    for p in frames[:2]:  # warm-up
        checker.measure(p.image, p.finding.face)
        pipeline.embed([p])
    t0 = time.perf_counter()
    for p in frames:
        checker.measure(p.image, p.finding.face)
    t1 = time.perf_counter()
    pipeline.embed(frames)
    t2 = time.perf_counter()
    measure_ms = (t1 - t0) * 1e3 / len(frames)
    embed_ms = (t2 - t1) * 1e3 / len(frames)
    return {
        "frames": len(frames),
        "liveness_measure_ms_per_frame": measure_ms,
        "embed_ms_per_frame": embed_ms,
        "embed_over_measure": embed_ms / measure_ms,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--burst", type=int, default=4)
    parser.add_argument("--face-pack", default="auto")
    parser.add_argument(
        "--out", type=Path, default=REPO / "bench" / "results" / "continuity_bench.json"
    )
    args = parser.parse_args()
    settings = Settings(
        model_dir=SHARED / "models",
        data_dir=Path(tempfile.mkdtemp(prefix="bioverify-bench-")),
        face_pack=args.face_pack,
    )
    pack = choose_face_pack(settings)
    pipeline = build_face_pipeline(settings, pack)
    threshold = pack.loosest_operating_point().threshold
    report: dict[str, Any] = {"face_pack": pack.id, "threshold": threshold, "burst": args.burst}
    webcam_prepared: list[PreparedFace] = []
    for name, people in (("lfw", lfw_images()), ("webcam", webcam_frames())):
        embeddings, prepared, failed = embed_all(pipeline, people)
        report[name] = {"no_face": failed, **bursts(embeddings, args.burst, threshold)}
        if name == "webcam":
            webcam_prepared = [p for faces in prepared.values() for p in faces]
    report["cost"] = cost(settings, pipeline, webcam_prepared)

    print(f"identity continuity, {pack.id}, threshold {threshold:.3f}, bursts of {args.burst}")
    print(
        f"{'set':8} {'ids':>4} {'bursts':>7} {'1-person pass':>14} {'p5 lowest':>10} "
        f"{'splices':>8} {'caught':>7}"
    )
    for name in ("lfw", "webcam"):
        r = report[name]
        if not r["one_person_bursts"]:
            print(f"{name:8} {r['identities']:>4} no identity has {args.burst} images")
            continue
        print(
            f"{name:8} {r['identities']:>4} {r['one_person_bursts']:>7} "
            f"{r['one_person_pass_rate']:>14.3f} {r['one_person_lowest_similarity_p5']:>10.3f} "
            f"{r['spliced_bursts']:>8} {r['splice_catch_rate']:>7.3f}"
        )
    c = report["cost"]
    if "skipped" not in c:
        print(
            f"per frame: embedding {c['embed_ms_per_frame']:.1f} ms, liveness measurement "
            f"{c['liveness_measure_ms_per_frame']:.1f} ms (ratio {c['embed_over_measure']:.2f})"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
