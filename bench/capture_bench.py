"""What a live capture costs on each face decision: VerifyFace, IdentifyFace and EnrollFace
(dry run) with the single-image liveness check against the same request sent with a live
capture of ``--frames`` frames, interleaved request by request so both see the same load.

Protocol (reproducible, no randomness): the three webcam subjects of the DEV PAD set are
enrolled from their first live frame; each request sends the subject's next live frame as
the image and, for the capture variant, its following ``--frames`` live frames (the same
person, frames of one recording). The service runs in its own process, as deployed (see
``face_bench.bench_verify_liveness`` for why). Decisions are counted so a reader sees what
the figures cover; latency is measured whatever the decision, since every check runs.

Prints a table and writes JSON to bench/results/capture_bench.json.

    python bench/capture_bench.py [--frames 4] [--rounds 10]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ["ORT_DISABLE_TELEMETRY"] = "1"


REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("BIOVERIFY_SHARED_DIR", REPO.parent / "shared"))
WEBCAM = SHARED / "data" / "face_pad" / "webcam_replay"

from bioverify.client import BioverifyClient, BioverifyClientError  # noqa: E402
from bioverify.v1 import common_pb2  # noqa: E402
from bioverify_admin.local_server import local_server  # noqa: E402

RPCS = ("verify", "identify", "enroll_dry_run")
VARIANTS = ("single_image", "capture")


def pct(values: list[float], q: int) -> float:
    return float(statistics.quantiles(values, n=100)[q - 1]) if len(values) > 1 else values[0]


def outcome(reply: Any) -> str:
    """The reply's decision; an enrolment has none, so whether it would have written."""
    if "decision" in reply.DESCRIPTOR.fields_by_name:
        return str(common_pb2.Decision.Name(reply.decision))
    return "WRITTEN" if reply.accepted_count else "REFUSED"


def live_frames(subject_dir: Path) -> list[bytes]:
    return [p.read_bytes() for p in sorted(subject_dir.glob("real_*.png"))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--frames", type=int, default=4, help="frames per live capture")
    parser.add_argument("--rounds", type=int, default=10, help="requests per subject and kind")
    parser.add_argument(
        "--out", type=Path, default=REPO / "bench" / "results" / "capture_bench.json"
    )
    args = parser.parse_args()
    subjects = {d.name: live_frames(d) for d in sorted(WEBCAM.iterdir()) if d.is_dir()}
    if any(len(f) < args.frames + 2 for f in subjects.values()):
        parser.error(f"every subject needs {args.frames + 2} live frames")

    latency: dict[str, dict[str, list[float]]] = {r: {v: [] for v in VARIANTS} for r in RPCS}
    decisions: dict[str, dict[str, Counter[str]]] = {
        r: {v: Counter() for v in VARIANTS} for r in RPCS
    }
    failed: Counter[str] = Counter()
    with (
        local_server(extra_env={"BIOVERIFY_MODEL_DIR": str(SHARED / "models")}) as target,
        BioverifyClient(target, timeout=60, retries=0) as client,
    ):
        client.wait_until_serving()
        for subject, frames in subjects.items():
            client.enroll_face(subject, [frames[0]], require_liveness=False)
        calls: dict[str, Callable[[str, bytes, dict[str, Any]], Any]] = {
            "verify": lambda s, image, kw: client.verify_face(s, image, **kw),
            "identify": lambda s, image, kw: client.identify_face(image, **kw),
            "enroll_dry_run": lambda s, image, kw: client.enroll_face(
                s, [image], dry_run=True, **kw
            ),
        }
        for _ in range(args.rounds):
            for subject, frames in subjects.items():
                image, capture = frames[1], frames[2 : 2 + args.frames]
                for rpc, call in calls.items():
                    for variant in VARIANTS:
                        kw: dict[str, Any] = {"require_liveness": True}
                        if variant == "capture":
                            kw.update(live_frames=capture, fps=2.0)
                        t0 = time.perf_counter()
                        try:
                            reply = call(subject, image, kw)
                        except BioverifyClientError as exc:
                            failed[f"{rpc}/{variant}: {exc.code.name}"] += 1
                            continue
                        latency[rpc][variant].append((time.perf_counter() - t0) * 1e3)
                        decisions[rpc][variant][outcome(reply)] += 1

    results: dict[str, Any] = {"frames_per_capture": args.frames, "rounds": args.rounds}
    for rpc in RPCS:
        row: dict[str, Any] = {}
        for variant in VARIANTS:
            values = latency[rpc][variant]
            row[variant] = {
                "n": len(values),
                "p50_ms": pct(values, 50) if values else None,
                "p95_ms": pct(values, 95) if values else None,
                "decisions": dict(decisions[rpc][variant]),
            }
        plain, capture = row["single_image"]["p50_ms"], row["capture"]["p50_ms"]
        if plain and capture:
            row["capture_over_single_image_p50"] = capture / plain
            row["capture_extra_ms_per_frame_p50"] = (capture - plain) / args.frames
        results[rpc] = row
    results["failed"] = dict(failed)
    print_table(results)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nwritten to {args.out}")
    return 0


def print_table(r: dict[str, Any]) -> None:
    print(
        f"\nFace decisions with a {r['frames_per_capture']}-frame live capture against the "
        "single-image liveness check (p50 / p95 ms, interleaved)"
    )
    print(f"{'RPC':<16}{'single image':>18}{'with capture':>18}{'ratio':>8}{'ms/frame':>10}")
    for rpc in RPCS:
        row = r[rpc]
        cells = []
        for variant in VARIANTS:
            v = row[variant]
            cells.append(f"{v['p50_ms']:.1f} / {v['p95_ms']:.1f}" if v["n"] else "-")
        ratio = row.get("capture_over_single_image_p50")
        per_frame = row.get("capture_extra_ms_per_frame_p50")
        ratio_cell = f"{ratio:.2f}" if ratio else "-"
        frame_cell = f"{per_frame:.1f}" if per_frame else "-"
        print(f"{rpc:<16}{cells[0]:>18}{cells[1]:>18}{ratio_cell:>8}{frame_cell:>10}")
    for rpc in RPCS:
        print(
            f"  {rpc} decisions: "
            + "; ".join(f"{v}: {dict(r[rpc][v]['decisions'])}" for v in VARIANTS)
        )
    if r["failed"]:
        print("failed requests:", r["failed"])


if __name__ == "__main__":
    sys.exit(main())
