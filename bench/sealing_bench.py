"""What encrypting templates at rest (``TEMPLATE_KEY_FILE``, AES-256-GCM) costs, measured side
by side in one run against the same store without keys.

For each store (SQLite always; Redis with ``--redis``, a real redis-server) two stores are
filled with the same ``--templates`` synthetic unit-norm templates (``--dim``, ``--samples``
per template) through ``save_many``: one plain, one sealed. Then, alternating plain and sealed
``--rounds`` times so that machine noise hits both alike:

- **scan**: ``iter_templates`` over every template, what a gallery rebuild at startup reads;
- **get**: ``get_template`` of random subjects, the store read of every 1:1 verification
  (median and p95 per call);
- **save**: ``save`` of one more sample onto an existing template (read, merge, write), the
  store part of an enrolment;
- **gallery start**: what a replica's start costs with each store: a cold ``rebuild`` from it
  (every template read, the index built), against loading the gallery snapshot written at the
  last stop (plain, or sealed with the template keys: ``AesGcmFiles``); and that snapshot's
  ``save`` at the stop, and its size on disk.

Also the sealer alone: seal and open of one template's blobs (µs). Ratios sealed / plain are
the figures to compare; absolute times depend on the machine and its load.

    python bench/sealing_bench.py [--templates 20000] [--dim 128] [--samples 5] [--redis]
        [--rounds 3] [--gets 2000] [--saves 300] [--out bench/results/sealing_bench.json]
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from redis_process import RedisProcess, path_bytes

from bioverify.index.gallery import Gallery
from bioverify.store.ports import TemplateStore, TemplateWrite
from bioverify.store.redis_store import RedisTemplateStore
from bioverify.store.sealed_files import PLAIN_FILES, AesGcmFiles, FileSealer
from bioverify.store.sealing import NO_SEALING, AesGcmSealer, BlobPlace, BlobSealer
from bioverify.store.sqlite_store import SqliteTemplateStore

TENANT = "bench"
MODEL = "bench-model"
Vectors = npt.NDArray[np.float32]


def unit_rows(rng: np.random.Generator, n: int, dim: int) -> Vectors:
    rows = rng.normal(size=(n, dim)).astype(np.float32)
    normed: Vectors = rows / np.linalg.norm(rows, axis=1, keepdims=True)
    return normed


def fill(store: TemplateStore, samples: list[Vectors]) -> float:
    started = time.perf_counter()
    batch = 500
    for start in range(0, len(samples), batch):
        store.save_many(
            [
                TemplateWrite(TENANT, f"s{i:07d}", "face", MODEL, samples[i])
                for i in range(start, min(start + batch, len(samples)))
            ]
        )
    return time.perf_counter() - started


def scan_s(store: TemplateStore) -> float:
    started = time.perf_counter()
    count = sum(1 for _ in store.iter_templates("face", MODEL))
    elapsed = time.perf_counter() - started
    assert count > 0
    return elapsed


def per_call_ms(call: Callable[[int], object], indices: list[int]) -> list[float]:
    out = []
    for i in indices:
        started = time.perf_counter()
        call(i)
        out.append((time.perf_counter() - started) * 1000)
    return out


def get_one(store: TemplateStore, i: int) -> None:
    store.get_template(TENANT, f"s{i:07d}", "face")


def add_one(store: TemplateStore, targets: list[int], added: Vectors, k: int) -> None:
    """One more sample (``added[k]``) onto subject ``targets[k]``'s template."""
    store.save(TemplateWrite(TENANT, f"s{targets[k]:07d}", "face", MODEL, added[k]))


def summary(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {
        "median": statistics.median(ordered),
        "p95": ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))],
    }


def in_turn(stores: dict[str, TemplateStore], round_: int) -> list[tuple[str, TemplateStore]]:
    """Plain then sealed in even rounds, sealed then plain in odd ones."""
    items = list(stores.items())
    return items if round_ % 2 == 0 else items[::-1]


def gallery_start(
    stores: dict[str, TemplateStore], files: dict[str, FileSealer], args: argparse.Namespace
) -> dict[str, Any]:
    """Rebuild from each store, and save / load of each kind of snapshot, alternating which
    goes first. A load reads the snapshot just saved, from the page cache (a restart soon
    after a stop does too); reading from a cold disk adds the same I/O to both."""
    times: dict[str, list[float]] = {
        f"{op}_s_{name}": [] for op in ("rebuild", "save", "load") for name in stores
    }
    sizes: dict[str, int] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for round_ in range(args.rounds):
            for name, store in in_turn(stores, round_):
                folder = Path(tmp) / name

                def gallery(name: str = name) -> Gallery:
                    return Gallery("face", MODEL, args.dim, files=files[name])

                built = gallery()
                started = time.perf_counter()
                built.rebuild(store)
                times[f"rebuild_s_{name}"].append(time.perf_counter() - started)
                started = time.perf_counter()
                built.save(folder)
                times[f"save_s_{name}"].append(time.perf_counter() - started)
                sizes[name] = path_bytes(folder)
                del built
                loaded = gallery()
                started = time.perf_counter()
                assert loaded.load(folder)
                times[f"load_s_{name}"].append(time.perf_counter() - started)
                assert len(loaded) == args.templates
                del loaded
    row: dict[str, Any] = {key: statistics.median(values) for key, values in times.items()}
    row["snapshot_bytes"] = sizes
    row["load_ratio"] = row["load_s_sealed"] / row["load_s_plain"]
    row["save_ratio"] = row["save_s_sealed"] / row["save_s_plain"]
    row["sealed_rebuild_over_sealed_load"] = row["rebuild_s_sealed"] / row["load_s_sealed"]
    return row


def bench_store(
    kind: str,
    opener: Callable[[str, BlobSealer], TemplateStore],
    samples: list[Vectors],
    args: argparse.Namespace,
    rng: np.random.Generator,
) -> dict[str, Any]:
    key = secrets.token_bytes(32)
    sealer = AesGcmSealer([key])
    stores = {"plain": opener("plain", NO_SEALING), "sealed": opener("sealed", sealer)}
    row: dict[str, Any] = {"store": kind}
    try:
        for name, store in stores.items():
            row[f"fill_s_{name}"] = fill(store, samples)
        scans: dict[str, list[float]] = {"plain": [], "sealed": []}
        gets: dict[str, list[float]] = {"plain": [], "sealed": []}
        saves: dict[str, list[float]] = {"plain": [], "sealed": []}
        extra = unit_rows(rng, args.saves * args.rounds, args.dim)
        for round_ in range(args.rounds):
            picks = [int(i) for i in rng.integers(0, len(samples), args.gets)]
            targets = [int(i) for i in rng.integers(0, len(samples), args.saves)]
            added = extra[round_ * args.saves : (round_ + 1) * args.saves]
            for name, store in in_turn(stores, round_):  # the same picks for both
                scans[name].append(scan_s(store))
                gets[name] += per_call_ms(partial(get_one, store), picks)
                saves[name] += per_call_ms(
                    partial(add_one, store, targets, added), list(range(args.saves))
                )
        for name in stores:
            row[f"scan_s_{name}"] = statistics.median(scans[name])
            row[f"get_ms_{name}"] = summary(gets[name])
            row[f"save_ms_{name}"] = summary(saves[name])
        row["scan_ratio"] = row["scan_s_sealed"] / row["scan_s_plain"]
        row["get_median_ratio"] = row["get_ms_sealed"]["median"] / row["get_ms_plain"]["median"]
        row["save_median_ratio"] = row["save_ms_sealed"]["median"] / row["save_ms_plain"]["median"]
        row["gallery"] = gallery_start(
            stores, {"plain": PLAIN_FILES, "sealed": AesGcmFiles([key])}, args
        )
    finally:
        for store in stores.values():
            store.close()
    return row


def sealer_alone(samples: list[Vectors], repeats: int = 2000) -> dict[str, float]:
    sealer = AesGcmSealer([secrets.token_bytes(32)])
    blob = samples[0].tobytes()
    place = BlobPlace(TENANT, "s0000000", "face", "samples")
    started = time.perf_counter()
    sealed = [sealer.seal(blob, place) for _ in range(repeats)]
    seal_us = (time.perf_counter() - started) / repeats * 1e6
    started = time.perf_counter()
    for item in sealed:
        sealer.open(item, place)
    open_us = (time.perf_counter() - started) / repeats * 1e6
    return {"bytes": len(blob), "seal_us": seal_us, "open_us": open_us}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--templates", type=int, default=20_000)
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--samples", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--gets", type=int, default=2000)
    parser.add_argument("--saves", type=int, default=300)
    parser.add_argument("--redis", action="store_true")
    parser.add_argument("--out", type=Path, default=Path("bench/results/sealing_bench.json"))
    args = parser.parse_args()
    rng = np.random.default_rng(20261208)
    samples = [unit_rows(rng, args.samples, args.dim) for _ in range(args.templates)]
    result: dict[str, Any] = {
        "templates": args.templates,
        "dim": args.dim,
        "samples_per_template": args.samples,
        "load_1min": os.getloadavg()[0],
        "sealer": sealer_alone(samples),
        "stores": [],
    }
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)

        def sqlite(name: str, sealer: BlobSealer) -> TemplateStore:
            return SqliteTemplateStore(root / f"{name}.sqlite3", sealer=sealer)

        result["stores"].append(bench_store("sqlite", sqlite, samples, args, rng))
        if args.redis:
            server = RedisProcess(root / "redis", appendonly=False)
            try:

                def on_redis(name: str, sealer: BlobSealer) -> TemplateStore:
                    url = server.url()
                    return RedisTemplateStore(url, key_prefix=f"{name}:", sealer=sealer)

                result["stores"].append(bench_store("redis", on_redis, samples, args, rng))
            finally:
                server.stop()
    s = result["sealer"]
    print(
        f"sealer alone, {s['bytes']} B per blob: seal {s['seal_us']:.1f} µs, "
        f"open {s['open_us']:.1f} µs"
    )
    print(
        f"\n{args.templates} templates x {args.samples} samples x {args.dim}-d "
        f"(load {result['load_1min']:.1f})"
    )
    header = f"{'store':8}{'op':6}{'plain':>14}{'sealed':>14}{'ratio':>8}"
    print(header)
    print("-" * len(header))
    for row in result["stores"]:
        plain_s, sealed_s = row["scan_s_plain"], row["scan_s_sealed"]
        print(
            f"{row['store']:8}{'scan':6}{plain_s:>12.2f} s{sealed_s:>12.2f} s"
            f"{row['scan_ratio']:>8.2f}"
        )
        for op in ("get", "save"):
            plain, sealed = row[f"{op}_ms_plain"], row[f"{op}_ms_sealed"]
            print(
                f"{'':8}{op:6}{plain['median']:>11.3f} ms{sealed['median']:>11.3f} ms"
                f"{row[f'{op}_median_ratio']:>8.2f}"
            )
    print(f"\n{'store':8}{'gallery start':24}{'plain':>12}{'sealed':>12}{'ratio':>8}")
    for row in result["stores"]:
        g = row["gallery"]
        for op, what in (
            ("rebuild", "cold rebuild"),
            ("load", "snapshot load (cached)"),
            ("save", "snapshot save (stop)"),
        ):
            plain, sealed = g[f"{op}_s_plain"], g[f"{op}_s_sealed"]
            print(
                f"{row['store'] if op == 'rebuild' else '':8}{what:24}{plain:>10.2f} s"
                f"{sealed:>10.2f} s{sealed / plain:>8.2f}"
            )
        size = g["snapshot_bytes"]
        print(f"{'':8}{'snapshot MB':24}{size['plain'] / 1e6:>12.1f}{size['sealed'] / 1e6:>12.1f}")
        print(
            f"{'':8}a sealed start: rebuild / snapshot load = "
            f"{g['sealed_rebuild_over_sealed_load']:.1f}x"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2), encoding="utf-8")
    print(f"\nwrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
