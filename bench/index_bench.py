"""1:N index benchmark: exact vs ANN (and, with --baselines, IVF-Flat and HNSW) on synthetic
galleries shaped like our embeddings.

For each dimension and gallery size it measures build time, memory per template (serialized
size, and the process RSS growth while building), single-query latency p50/p99 (one query per
call, as the service searches; k=10), recall@1 against exact search, the cost of deleting
one template and the time to load the index back from its file (a replica restart).

Generator (``synthesize``): identity centres c = unit(offset·u + z·diag(√λ)·Qᵀ) with z ~ N(0, I),
λᵢ ∝ (i+1)^-alpha (an anisotropic spectrum), Q a random rotation and u a shared mean
direction; a template is unit(c + σ_t·ε/√d), a probe unit(c + σ_p·ε/√d). "Mated" probes are
fresh samples of enrolled identities (each has a true neighbour); "non-mated" probes come from
identities not in the gallery (the best match is an impostor). Profiles are calibrated on our
real embeddings of the DEV set: MobileFaceNet on 172 LFW faces gave impostor cosine
0.009 ± 0.099 and genuine sample-vs-sample 0.67; CAM++ on 112 utterances gave impostor
0.085 ± 0.12 and genuine 0.75. The 512-d profile (ArcFace-like) is not calibrated.

Latency is reported as wall time and as the CPU time of the searching thread: on a machine
shared with other work, wall-time tails include waiting for a core (the 1-minute load average
at each row is recorded). With ``--threads 1`` the thread's CPU time is the query's own cost.

    python bench/index_bench.py [--dims 128,192] [--sizes 10000,100000,1000000]
        [--threads 1] [--queries 300] [--baselines] [--out bench/results/index_bench.json]
"""

from __future__ import annotations

import argparse
import os
import sys


def _threads_from_argv() -> str:
    for i, arg in enumerate(sys.argv):
        if arg == "--threads" and i + 1 < len(sys.argv):
            return sys.argv[i + 1]
        if arg.startswith("--threads="):
            return arg.split("=", 1)[1]
    return "1"


# BLAS/OpenMP pools size themselves when first loaded: set them before numpy and faiss load.
os.environ["OPENBLAS_NUM_THREADS"] = os.environ["OMP_NUM_THREADS"] = _threads_from_argv()

import json  # noqa: E402
import math  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from dataclasses import asdict, dataclass  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import faiss  # noqa: E402
import numpy as np  # noqa: E402

from bioverify.index.faiss_ann import DEFAULT_RERANK, FastScanIndex, default_subquantizers  # noqa: E402
from bioverify.index.faiss_exact import ExactIndex  # noqa: E402
from bioverify.index.gallery import INDEX_LOADERS  # noqa: E402
from bioverify.index.ports import VectorIndex  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
K = 10


@dataclass(frozen=True)
class Profile:
    name: str
    alpha: float  # spectrum decay of identity centres
    offset: float  # weight of the shared mean direction
    template_noise: float  # σ_t (a template averages a few samples)
    probe_noise: float  # σ_p (one sample)


PROFILES = {
    128: Profile("face-like (MobileFaceNet on LFW)", 0.5, 0.0, 0.4, 0.7),
    192: Profile("voice-like (CAM++ on TIMIT/LibriSpeech)", 0.85, 0.33, 0.33, 0.58),
    512: Profile("ArcFace-like (uncalibrated)", 0.5, 0.0, 0.4, 0.7),
}


@dataclass
class Synthetic:
    templates: np.ndarray
    mated: np.ndarray
    mated_of: np.ndarray  # template row of each mated probe
    nonmated: np.ndarray


def _unit(x: np.ndarray) -> np.ndarray:
    rows: np.ndarray = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)
    return rows


def synthesize(n: int, dim: int, nq: int, seed: int = 0) -> Synthetic:
    p = PROFILES.get(dim, PROFILES[512])
    rng = np.random.default_rng(seed)
    lam = (1.0 + np.arange(dim)) ** -p.alpha
    scale = np.sqrt(lam / lam.sum())
    rotation, _ = np.linalg.qr(rng.normal(size=(dim, dim)))
    mean_dir = _unit(rng.normal(size=(1, dim)))[0]

    def centres(m: int) -> np.ndarray:
        z = _unit((rng.normal(size=(m, dim)) * scale) @ rotation.T)
        return _unit(p.offset * mean_dir + z)

    def sample(c: np.ndarray, sigma: float) -> np.ndarray:
        return _unit(c + sigma / math.sqrt(dim) * rng.normal(size=c.shape))

    templates = np.empty((n, dim), np.float32)
    mated_of = np.sort(rng.choice(n, nq, replace=False))
    mated = np.empty((nq, dim), np.float32)
    chunk = 100_000
    for start in range(0, n, chunk):
        c = centres(min(chunk, n - start))
        templates[start : start + len(c)] = sample(c, p.template_noise)
        sel = (mated_of >= start) & (mated_of < start + len(c))
        mated[sel] = sample(c[mated_of[sel] - start], p.probe_noise)
    nonmated = sample(centres(nq), p.probe_noise)
    return Synthetic(templates, mated, mated_of, nonmated)


def calibration(s: Synthetic) -> dict[str, float]:
    t = s.templates[: min(4000, len(s.templates))]
    half = len(t) // 2
    imp = (t[:half] @ t[half:].T).ravel()
    gen = np.sum(s.mated * s.templates[s.mated_of], axis=1)
    return {
        "impostor_cos_mean": float(imp.mean()),
        "impostor_cos_std": float(imp.std()),
        "genuine_template_probe_cos_mean": float(gen.mean()),
    }


def rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q))


def latency(
    search: Callable[[np.ndarray], np.ndarray], probes: np.ndarray
) -> tuple[list[float], list[float], np.ndarray]:
    """Per-query wall time and CPU time of the calling thread (ms), and the top-1 ids.

    With one BLAS/OpenMP thread all the work runs on the calling thread, so its CPU time is
    the query's cost without the waits that other processes on a shared machine add."""
    search(probes[:1])  # warm
    wall, cpu, top1 = [], [], []
    for row in probes:
        q = row[None, :]
        c0, t0 = time.thread_time(), time.perf_counter()
        ids = search(q)
        wall.append((time.perf_counter() - t0) * 1e3)
        cpu.append((time.thread_time() - c0) * 1e3)
        top1.append(int(ids[0, 0]))
    return wall, cpu, np.asarray(top1)


@dataclass
class Row:
    dim: int
    n: int
    index: str
    threads: int
    build_s: float
    bytes_per_template_file: float
    bytes_per_template_rss: float
    load_s: float
    p50_ms: float
    p99_ms: float
    cpu_p50_ms: float
    cpu_p99_ms: float
    recall1_mated: float
    recall1_nonmated: float
    remove_one_ms: float
    loadavg_1m: float


def measure_index(
    name: str,
    build: Callable[[], Any],
    search: Callable[[Any], Any],
    s: Synthetic,
    truth: tuple[np.ndarray, np.ndarray],
    threads: int,
    *,
    save_load: Callable[[Any, Path], Any] | None = None,
    remove: Callable[[Any, int], None] | None = None,
    latency_queries: int,
) -> tuple[Any, list[Row]]:
    n, dim = s.templates.shape
    rss0 = rss_bytes()
    t0 = time.perf_counter()
    index = build()
    build_s = time.perf_counter() - t0
    rss_per = (rss_bytes() - rss0) / n
    file_per, load_s = float("nan"), float("nan")
    if save_load is not None:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "index"
            t0 = time.perf_counter()
            save_load(index, path)
            load_s = time.perf_counter() - t0
            file_per = path.stat().st_size / n
    rows = []
    found = search(index)
    searches = found if isinstance(found, dict) else {name: found}
    for label, fn in searches.items():
        faiss.omp_set_num_threads(threads)
        mated = s.mated[:latency_queries]
        nonmated = s.nonmated[:latency_queries]
        w_m, c_m, top_m = latency(fn, mated)
        w_n, c_n, top_n = latency(fn, nonmated)
        times, cpu = w_m + w_n, c_m + c_n
        rows.append(
            Row(
                dim=dim,
                n=n,
                index=label,
                threads=threads,
                build_s=round(build_s, 2),
                bytes_per_template_file=round(file_per, 1),
                bytes_per_template_rss=round(rss_per, 1),
                load_s=round(load_s, 2),
                p50_ms=round(pct(times, 50), 3),
                p99_ms=round(pct(times, 99), 3),
                cpu_p50_ms=round(pct(cpu, 50), 3),
                cpu_p99_ms=round(pct(cpu, 99), 3),
                recall1_mated=float(np.mean(top_m == truth[0][: len(top_m)])),
                recall1_nonmated=float(np.mean(top_n == truth[1][: len(top_n)])),
                remove_one_ms=float("nan"),
                loadavg_1m=round(os.getloadavg()[0], 2),
            )
        )
    if remove is not None:
        times = []
        for j in range(20):
            t0 = time.perf_counter()
            remove(index, j * (n // 20))
            times.append((time.perf_counter() - t0) * 1e3)
        for r in rows:
            r.remove_one_ms = round(pct(times, 50), 3)
    return index, rows


def bench_size(
    dim: int,
    n: int,
    threads: int,
    nq: int,
    baselines: bool,
    hnsw_max: int,
    ann_m: int,
    rerank: int,
    with_exact: bool = True,
) -> tuple[list[Row], dict[str, float]]:
    s = synthesize(n, dim, nq)
    ids = np.arange(n, dtype=np.int64)
    exact_lat_q = nq if n < 1_000_000 else min(nq, 100)

    def vi_search(index: VectorIndex) -> Callable[[np.ndarray], np.ndarray]:
        return lambda q: index.search(q, K)[1]

    def vi_save_load(index: VectorIndex, path: Path) -> None:
        with open(path, "wb") as out:
            index.save(out)
        with open(path, "rb") as source:
            INDEX_LOADERS[index.kind](source)

    def vi_remove(index: VectorIndex, i: int) -> None:
        index.remove(np.array([i], np.int64))

    def build_exact() -> ExactIndex:
        index = ExactIndex(dim)
        index.add(ids, s.templates)
        return index

    exact = build_exact()
    truth = (exact.search(s.mated, 1)[1][:, 0], exact.search(s.nonmated, 1)[1][:, 0])
    del exact
    rows: list[Row] = []
    if with_exact:  # --no-exact: ground truth only (exact latency rows are slow at 1M)
        _, r = measure_index(
            "exact",
            build_exact,
            vi_search,
            s,
            truth,
            threads,
            save_load=vi_save_load,
            remove=vi_remove,
            latency_queries=exact_lat_q,
        )
        rows += r
    ann_options: dict[str, int] = {"rerank": rerank}
    if ann_m:
        ann_options["m"] = ann_m
    ann_name = f"pq-fastscan m={ann_m or default_subquantizers(dim)} rerank={rerank}"
    _, r = measure_index(
        ann_name,
        lambda: FastScanIndex.build(ids, s.templates, seed=0, **ann_options),
        vi_search,
        s,
        truth,
        threads,
        save_load=vi_save_load,
        remove=vi_remove,
        latency_queries=nq,
    )
    rows += r
    if baselines:
        nlist = 2 ** round(math.log2(4 * math.sqrt(n)))

        def build_ivf() -> Any:
            index = faiss.index_factory(dim, f"IVF{nlist},Flat", faiss.METRIC_INNER_PRODUCT)
            rng = np.random.default_rng(0)
            index.train(s.templates[rng.choice(n, min(n, 40 * nlist), replace=False)])
            index.add_with_ids(s.templates, ids)
            return index

        def ivf_searches(index: Any) -> dict[str, Callable[[np.ndarray], np.ndarray]]:
            out: dict[str, Callable[[np.ndarray], np.ndarray]] = {}
            for nprobe in (64, 256):
                # faiss's stub has no keyword arguments; its SearchParameters classes take them.
                params = faiss.SearchParametersIVF(nprobe=min(nprobe, nlist))  # type: ignore[call-arg]

                def top_ids(q: np.ndarray, p: faiss.SearchParameters = params) -> np.ndarray:
                    ids: np.ndarray = index.search(q, K, params=p)[1]
                    return ids

                out[f"ivf{nlist}-flat nprobe={nprobe}"] = top_ids
            return out

        def faiss_save_load(index: Any, path: Path) -> None:
            faiss.write_index(index, str(path))
            faiss.read_index(str(path))

        _, r = measure_index(
            "ivf",
            build_ivf,
            ivf_searches,
            s,
            truth,
            threads,
            save_load=faiss_save_load,
            remove=lambda index, i: index.remove_ids(np.array([i], np.int64)),
            latency_queries=nq,
        )
        rows += r
        if n <= hnsw_max:

            def build_hnsw() -> Any:
                index = faiss.IndexHNSWFlat(dim, 32, faiss.METRIC_INNER_PRODUCT)
                index.hnsw.efConstruction = 40
                index.add(s.templates)
                return index

            def hnsw_searches(index: Any) -> dict[str, Callable[[np.ndarray], np.ndarray]]:
                out: dict[str, Callable[[np.ndarray], np.ndarray]] = {}
                for ef in (64, 128):
                    # Missing from faiss's stub, though faiss exports it (swigfaiss).
                    params = faiss.SearchParametersHNSW(efSearch=ef)  # type: ignore[attr-defined]

                    def top_ids(q: np.ndarray, p: Any = params) -> np.ndarray:
                        ids: np.ndarray = index.search(q, K, params=p)[1]
                        return ids

                    out[f"hnsw32 ef={ef}"] = top_ids
                return out

            _, r = measure_index(
                "hnsw",
                build_hnsw,
                hnsw_searches,
                s,
                truth,
                threads,
                save_load=faiss_save_load,
                latency_queries=nq,
            )
            rows += r
    return rows, calibration(s)


def print_table(rows: list[Row]) -> None:
    head = (
        f"{'dim':>4} {'n':>8} {'index':<34} {'thr':>3} {'build s':>8} {'B/tmpl':>7} "
        f"{'RSS B':>7} {'load s':>6} {'p50 ms':>7} {'p99 ms':>7} {'cpu p50':>7} {'cpu p99':>7} "
        f"{'R@1 mat':>7} "
        f"{'R@1 non':>7} {'del ms':>7} {'load1m':>6}"
    )
    print(head)
    print("-" * len(head))
    for r in rows:
        print(
            f"{r.dim:>4} {r.n:>8} {r.index:<34} {r.threads:>3} {r.build_s:>8.2f} "
            f"{r.bytes_per_template_file:>7.0f} {r.bytes_per_template_rss:>7.0f} "
            f"{r.load_s:>6.2f} {r.p50_ms:>7.2f} {r.p99_ms:>7.2f} {r.cpu_p50_ms:>7.2f} "
            f"{r.cpu_p99_ms:>7.2f} {r.recall1_mated:>7.4f} "
            f"{r.recall1_nonmated:>7.4f} {r.remove_one_ms:>7.3f} {r.loadavg_1m:>6.2f}",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dims", default="128,192")
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--threads", type=int, default=1, help="BLAS/OpenMP threads")
    parser.add_argument("--queries", type=int, default=300, help="mated and non-mated each")
    parser.add_argument("--baselines", action="store_true", help="also IVF-Flat and HNSW")
    parser.add_argument("--hnsw-max", type=int, default=100_000, help="largest HNSW build")
    parser.add_argument("--ann-m", type=int, default=0, help="PQ sub-quantizers (0: default)")
    parser.add_argument("--rerank", type=int, default=DEFAULT_RERANK, help="ANN shortlist")
    parser.add_argument("--exact", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--out", type=Path, default=REPO / "bench/results/index_bench.json")
    args = parser.parse_args()
    faiss.omp_set_num_threads(args.threads)
    rows: list[Row] = []
    calibrations: dict[str, dict[str, float]] = {}
    started = time.perf_counter()
    for dim in (int(d) for d in args.dims.split(",")):
        for n in (int(x) for x in args.sizes.split(",")):
            print(f"# dim {dim}, {n} templates", flush=True)
            r, cal = bench_size(
                dim,
                n,
                args.threads,
                args.queries,
                args.baselines,
                args.hnsw_max,
                args.ann_m,
                args.rerank,
                args.exact,
            )
            calibrations[f"{dim}/{n}"] = cal
            print_table(r)
            rows += r
    print("\nall rows:")
    print_table(rows)
    result = {
        "machine": {
            "cpus": os.cpu_count(),
            "faiss": faiss.__version__,
            "numpy": np.__version__,
            "threads": args.threads,
        },
        "k": K,
        "queries_each": args.queries,
        "profiles": {str(d): asdict(p) for d, p in PROFILES.items()},
        "calibration": calibrations,
        "rows": [asdict(r) for r in rows],
        "wall_s": round(time.perf_counter() - started, 1),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1))
    print(f"\nwrote {args.out} ({result['wall_s']} s)")


if __name__ == "__main__":
    main()
