"""How much memory a burst of large photos takes: concurrent EnrollFace (dry run) calls, each
with ``--images`` photos of ``--side`` x ``--side`` pixels (small on the wire, a 40-megapixel
canvas each once decoded), against the service with its default working side (larger
images shrunk to 2048 px while decoded) and with shrinking turned off, in one run.

Protocol (reproducible, no randomness): a real LFW face, nearest-neighbour upscaled to a
third of the canvas, is pasted on a flat grey canvas and encoded as PNG and as JPEG. For each
format and setting a fresh service process starts (as deployed), serves one warm-up request,
and then ``--concurrency`` clients send their enrolments at once. The service's resident
memory is read from /proc: after the warm-up (when its peak, VmHWM, is reset), and its
peak once the burst is done.

Prints a table and writes JSON to bench/results/memory_bench.json.

    python bench/memory_bench.py [--concurrency 4] [--images 20] [--side 6300]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

os.environ["ORT_DISABLE_TELEMETRY"] = "1"

from PIL import Image

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("BIOVERIFY_SHARED_DIR", REPO.parent / "shared"))
FACE = SHARED / "data" / "face_verification" / "lfw" / "Bill_Clinton" / "Bill_Clinton_0001.jpg"

from bioverify.client import BioverifyClient  # noqa: E402
from bioverify_admin.local_server import local_server  # noqa: E402

NO_SHRINKING = 100_000
"""A working side no image reaches: every photo is analysed at full size."""


def large_photo(side: int, fmt: str) -> bytes:
    face = Image.open(FACE).convert("RGB")
    big_face = face.resize((side // 3, side // 3), Image.Resampling.NEAREST)
    canvas = Image.new("RGB", (side, side), (128, 128, 128))
    canvas.paste(big_face, (side // 3, side // 3))
    buf = io.BytesIO()
    canvas.save(buf, format=fmt, **({"quality": 85} if fmt == "JPEG" else {}))
    return buf.getvalue()


def service_pid() -> int:
    """The one ``bioverify serve`` child of this process."""
    mine = str(os.getpid())
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if stat.rsplit(")", 1)[1].split()[1] == mine:
            return int(entry.name)
    raise RuntimeError("the service process was not found")


def memory_mib(pid: int, field: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"{field} not in /proc/{pid}/status")


def burst(photo: bytes, working_side: int, args: argparse.Namespace) -> dict[str, Any]:
    env = {
        "BIOVERIFY_MODEL_DIR": str(SHARED / "models"),
        "BIOVERIFY_MAX_IMAGE_WORKING_SIDE": str(working_side),
        "BIOVERIFY_MAX_IMAGE_PIXELS": str(args.side * args.side),
        "BIOVERIFY_MAX_MESSAGE_BYTES": str(64 << 20),
        "BIOVERIFY_FACE_LIVENESS_PACK": "none",
        "BIOVERIFY_VOICE_PACK": "none",
        "BIOVERIFY_VOICE_ANTISPOOF_PACK": "none",
    }
    with local_server(extra_env=env) as target:
        pid = service_pid()
        with BioverifyClient(target, timeout=600, retries=0) as client:
            client.wait_until_serving()
            client.enroll_face("warm-up", [photo], dry_run=True)
            before = memory_mib(pid, "VmRSS")
            Path(f"/proc/{pid}/clear_refs").write_text("5")  # peak RSS := current RSS

            def enroll(i: int) -> int:
                reply = client.enroll_face(f"burst-{i}", [photo] * args.images, dry_run=True)
                return int(reply.accepted_count)

            t0 = time.perf_counter()
            with ThreadPoolExecutor(args.concurrency) as pool:
                accepted = sum(pool.map(enroll, range(args.concurrency)))
            wall = time.perf_counter() - t0
            peak = memory_mib(pid, "VmHWM")
    return {
        "working_side": working_side,
        "rss_after_warm_up_mib": before,
        "peak_rss_mib": peak,
        "burst_growth_mib": peak - before,
        "wall_s": wall,
        "accepted": accepted,
        "sent": args.concurrency * args.images,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--images", type=int, default=20, help="photos per enrolment")
    parser.add_argument("--side", type=int, default=6300, help="photo side in pixels")
    parser.add_argument("--formats", nargs="+", default=["PNG", "JPEG"])
    parser.add_argument(
        "--out", type=Path, default=REPO / "bench" / "results" / "memory_bench.json"
    )
    args = parser.parse_args()
    results: dict[str, Any] = {
        "concurrency": args.concurrency,
        "images_per_enrolment": args.images,
        "side_px": args.side,
        "runs": [],
    }
    for fmt in args.formats:
        photo = large_photo(args.side, fmt)
        for working_side in (2048, NO_SHRINKING):
            run = {"format": fmt, "payload_bytes": len(photo), **burst(photo, working_side, args)}
            results["runs"].append(run)
            print(
                f"{fmt:5} {len(photo) / 1e6:5.1f} MB  working side "
                f"{'full size' if working_side == NO_SHRINKING else working_side:>9}  "
                f"RSS {run['rss_after_warm_up_mib']:7.0f} -> peak {run['peak_rss_mib']:7.0f} MiB"
                f"  {run['wall_s']:6.1f} s  accepted {run['accepted']}/{run['sent']}",
                flush=True,
            )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nwritten to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
