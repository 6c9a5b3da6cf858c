"""Enrollment throughput and replica start time with a large gallery, in one run.

1. **Enrollment throughput over gRPC.** A ``bioverify serve`` process on loopback (default
   settings and packs) enrolls one subject per image of ``face_images.tsv`` (EnrollFace, one
   image each) from 1, 2 and 4 concurrent clients; faces/s is images answered per wall second.
   The split: the same images through the face pipeline in-process on one thread (decode,
   detect, align, embed = "inference"), and ``save`` of real-shaped templates (the
   embeddings of those images, one sample, a sample id) timed in-process on a fresh store
   (``--saves`` of them). SQLite always; with ``--redis`` also Redis (a real redis-server,
   AOF with ``appendfsync everysec``).
2. **Replica start with N templates.** The store is filled with N synthetic unit-norm templates
   of the default face pack's model id and dimension through ``TemplateStore.save_many`` (the
   bulk path: same semantics as ``save``, batched commits / round trips; one
   ``save`` per template costs ~5 ms on SQLite with ``synchronous=FULL``, 80+ min for
   1M). Then, each in a fresh server process: (a) *cold* start with no snapshot (rebuild: read
   every template from the store, build the ANN index), until the health check answers
   SERVING; stop with SIGTERM (the snapshot is written); ``--catch-up`` more templates are
   enrolled one by one with ``save``; (b) *warm* start from that snapshot plus the
   catch-up. Phases are timed inside the server process by wrapping the ``Gallery`` methods
   (``bench/gallery_bench.py --child-serve`` runs ``bioverify serve`` with those wrappers);
   the total is measured from outside (process spawn → health SERVING). Also: peak RSS of
   the server (VmHWM), bytes per template in the store on disk and in the snapshot, and for
   Redis ``used_memory``. Sizes are cumulative in one store: the 1M run tops the 100k store
   (plus its catch-up) up to 1M. SQLite at ``--sizes``; Redis at ``--redis-sizes``.

The 1-minute load average is recorded with every row: the machine is shared, and timings
under load include waiting for a core.

    python bench/gallery_bench.py [--redis] [--sizes 100000,1000000] [--redis-sizes 100000]
        [--concurrency 1,2,4] [--saves 2000] [--catch-up 1000]
        [--out bench/results/gallery_bench.json]
"""

from __future__ import annotations

import sys

if __name__ == "__main__" and len(sys.argv) > 2 and sys.argv[1] == "--child-serve":
    # The server process of the replica-start runs: `bioverify serve` with phase timers.
    import json
    import resource
    import threading
    import time
    from collections.abc import Callable, Iterator
    from pathlib import Path
    from typing import Any

    _t_entry = time.time()
    _phases_file = Path(sys.argv[2])
    _rec: dict[str, Any] = {"t_entry": _t_entry}
    _local = threading.local()

    from bioverify import cli
    from bioverify.index import gallery as _gallery
    from bioverify.server import app as _app
    from bioverify.store.redis_store import RedisTemplateStore
    from bioverify.store.sqlite_store import SqliteTemplateStore

    _rec["t_imported"] = time.time()

    def _add(key: str, seconds: float) -> None:
        _rec[key] = _rec.get(key, 0.0) + seconds

    def _dump() -> None:
        _rec["maxrss_bytes"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        tmp = _phases_file.with_name(_phases_file.name + f".{threading.get_ident()}.tmp")
        tmp.write_text(json.dumps(_rec))  # atomic: a dump may be interrupted by SIGTERM's
        tmp.replace(_phases_file)

    def _timed(name: str, always: bool = False) -> None:
        original = getattr(_gallery.Gallery, name)

        def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
            record = always or getattr(_local, "restoring", False)
            started = time.perf_counter()
            try:
                return original(self, *args, **kwargs)
            finally:
                if record:
                    _add(f"{self.modality}.{name}", time.perf_counter() - started)

        setattr(_gallery.Gallery, name, wrapper)

    for _name in ("rebuild", "load", "catch_up", "maintain", "_partition"):
        _timed(_name)
    _timed("save", always=True)

    _restore = _gallery.Gallery.restore

    def _restore_timed(self: Any, *args: Any, **kwargs: Any) -> str:
        _local.restoring = True
        started = time.perf_counter()
        try:
            how = _restore(self, *args, **kwargs)
        finally:
            _local.restoring = False
            _add(f"{self.modality}.restore", time.perf_counter() - started)
        _rec[f"{self.modality}.how"] = how
        return how

    _gallery.Gallery.restore = _restore_timed  # type: ignore[method-assign]

    def _timed_iter(cls: Any) -> None:
        original = cls.iter_templates

        def iter_templates(self: Any, *args: Any, **kwargs: Any) -> Iterator[Any]:
            inner, spent = original(self, *args, **kwargs), 0.0
            try:
                while True:
                    started = time.perf_counter()
                    try:
                        item = next(inner)
                    except StopIteration:
                        return
                    finally:
                        spent += time.perf_counter() - started
                    yield item
            finally:
                _add("store.iter_templates", spent)

        cls.iter_templates = iter_templates

    _timed_iter(SqliteTemplateStore)
    _timed_iter(RedisTemplateStore)

    _build = _app.build

    def _build_timed(settings: Any) -> Any:
        started = time.perf_counter()
        application = _build(settings)
        _rec["build_s"] = time.perf_counter() - started
        return application

    _app.build = _build_timed

    def _wrap_app(name: str, after: Callable[[Any], None]) -> None:
        original = getattr(_app.Application, name)

        def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            result = original(self, *args, **kwargs)
            _rec[f"{name}_s"] = time.perf_counter() - started
            after(self)
            return result

        setattr(_app.Application, name, wrapper)

    def _after_start(application: Any) -> None:
        _rec["t_serving"] = time.time()
        _rec["gallery_sizes"] = {g.modality: len(g) for g in application.galleries}
        _rec["gallery_kinds"] = {g.modality: g.describe() for g in application.galleries}
        _dump()

    _wrap_app("start", _after_start)
    _wrap_app("stop", lambda _application: _dump())
    sys.exit(cli.main(sys.argv[3:]))

import argparse
import hashlib
import json
import os
import platform
import shutil
import signal
import sqlite3
import statistics
import subprocess
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

os.environ["ORT_DISABLE_TELEMETRY"] = "1"

import grpc
import numpy as np
from grpc_health.v1 import health_pb2, health_pb2_grpc
from redis_process import RedisProcess, free_port, path_bytes

from bioverify.client import BioverifyClient, BioverifyClientError
from bioverify.errors import BioverifyError
from bioverify.packs import PackCatalog, PackManifest
from bioverify.server.app import build_face_pipeline
from bioverify.settings import Settings
from bioverify.store.ports import TemplateStore, TemplateWrite
from bioverify.store.redis_store import RedisTemplateStore
from bioverify.store.sqlite_store import SqliteTemplateStore
from bioverify_admin.datasets import read_identity_images

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("BIOVERIFY_SHARED_DIR", REPO.parent / "shared"))
MODELS = SHARED / "models"
FILL_BATCH = 5000
T0 = time.monotonic()


def log(message: str) -> None:
    print(f"[{time.monotonic() - T0:7.1f} s] {message}", file=sys.stderr, flush=True)


def load1() -> float:
    return round(os.getloadavg()[0], 2)


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def vm_hwm(pid: int) -> int:
    """Peak resident set size of a live process, in bytes (0 when unknown)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


# -- a server process ------------------------------------------------------------------------
@dataclass
class Server:
    proc: subprocess.Popen[bytes]
    port: int
    started: float
    phases_file: Path
    log_path: Path

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"


def spawn_server(workdir: Path, data_dir: Path, store_env: dict[str, str], tag: str) -> Server:
    """``bioverify serve`` (with the phase timers of ``--child-serve``) on a fixed free port,
    so the readiness probe can ask before the gallery is ready."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BIOVERIFY_")}
    env.update(
        ORT_DISABLE_TELEMETRY="1",
        BIOVERIFY_MODEL_DIR=str(MODELS),
        BIOVERIFY_LOG_LEVEL="INFO",
        **store_env,
    )
    port = free_port()
    phases_file = workdir / f"{tag}.phases.json"
    phases_file.unlink(missing_ok=True)
    log_path = workdir / f"{tag}.log"
    with log_path.open("ab") as log_file:
        started = time.time()
        proc = subprocess.Popen(
            [
                sys.executable,
                str(Path(__file__).resolve()),
                "--child-serve",
                str(phases_file),
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--data-dir",
                str(data_dir),
            ],
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            cwd=REPO,
        )
    return Server(proc, port, started, phases_file, log_path)


def wait_serving(server: Server, timeout: float) -> float:
    """Seconds from spawn until the health check answers SERVING."""
    deadline = time.monotonic() + timeout
    with grpc.insecure_channel(server.target) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while True:
            if server.proc.poll() is not None:
                tail = server.log_path.read_text(errors="replace")[-3000:]
                raise RuntimeError(f"server exited during start:\n{tail}")
            try:
                reply = stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=1.0)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return time.time() - server.started
            except grpc.RpcError:
                pass
            if time.monotonic() > deadline:
                server.proc.kill()
                raise RuntimeError(f"server not SERVING after {timeout:.0f} s")
            time.sleep(0.05)


def stop_server(server: Server) -> dict[str, Any]:
    """SIGTERM (drain, write the snapshot), then the phases the server recorded."""
    started = time.perf_counter()
    server.proc.send_signal(signal.SIGTERM)
    server.proc.wait(timeout=900)
    stop_s = time.perf_counter() - started
    phases: dict[str, Any] = (
        json.loads(server.phases_file.read_text()) if server.phases_file.exists() else {}
    )
    phases["stop_wall_s"] = stop_s
    return phases


# -- 1. enrollment throughput ----------------------------------------------------------------
def read_images(tsv: Path, limit: int | None) -> list[tuple[str, bytes]]:
    rows = read_identity_images(tsv)
    return [(row.identity, row.path.read_bytes()) for row in rows[: limit or None]]


def inference_split(images: list[tuple[str, bytes]]) -> tuple[dict[str, Any], list[np.ndarray]]:
    """The face pipeline in-process, one thread, per image: what an enrollment computes."""
    settings = Settings(model_dir=MODELS, data_dir=Path(tempfile.mkdtemp()))
    pack = PackCatalog(settings.model_dir, settings.data_dir / "packs").choose("face", "auto")
    pipeline = build_face_pipeline(settings, pack)
    pipeline.analyse(images[0][1])  # warm
    times, embeddings, failed = [], [], 0
    for _, data in images:
        started = time.perf_counter()
        try:
            prepared = pipeline.prepare(data)
            sample = pipeline.embed([prepared])[0]
        except BioverifyError:
            failed += 1
            continue
        times.append((time.perf_counter() - started) * 1e3)
        embeddings.append(sample.embedding.astype(np.float32))
    shutil.rmtree(settings.data_dir, ignore_errors=True)
    return {
        "images": len(images),
        "failed": failed,
        "inference_ms_p50": pct(times, 50),
        "inference_ms_mean": statistics.fmean(times),
        "inference_faces_per_s_one_thread": 1e3 / statistics.fmean(times),
        "loadavg_1m": load1(),
    }, embeddings


def time_saves(store: TemplateStore, embeddings: list[np.ndarray], n: int) -> dict[str, Any]:
    """``save`` (the request path) of real-shaped templates, one per new subject."""
    times = []
    for i in range(n):
        vector = embeddings[i % len(embeddings)]
        started = time.perf_counter()
        store.save(
            TemplateWrite(
                tenant="",
                subject_id=f"save-{i:06d}",
                modality="face",
                model="bench",
                new_samples=vector[None],
                metadata={},
                replace=False,
                sample_ids=[hashlib.sha256(vector.tobytes() + str(i).encode()).hexdigest()],
            )
        )
        times.append((time.perf_counter() - started) * 1e3)
    return {
        "store": store.name,
        "saves": n,
        "save_ms_p50": pct(times, 50),
        "save_ms_p95": pct(times, 95),
        "save_ms_mean": statistics.fmean(times),
        "saves_per_s_one_thread": 1e3 / statistics.fmean(times),
        "loadavg_1m": load1(),
    }


def enroll_level(
    target: str, images: list[tuple[str, bytes]], concurrency: int, prefix: str
) -> dict[str, Any]:
    """Every image enrolled as its own subject by ``concurrency`` clients (a channel each)."""
    clients = [BioverifyClient(target, timeout=120, retries=0) for _ in range(concurrency)]
    latencies: list[float] = []
    accepted = rejected = errors = 0
    lock = threading.Lock()
    counter = iter(range(len(images)))

    def worker(client: BioverifyClient) -> None:
        nonlocal accepted, rejected, errors
        while True:
            with lock:
                i = next(counter, None)
            if i is None:
                return
            identity, data = images[i]
            started = time.perf_counter()
            try:
                reply = client.enroll_face(f"{prefix}-{i:04d}-{identity}", [data])
                ok = reply.accepted_count > 0
                err = False
            except BioverifyClientError:
                ok, err = False, True
            elapsed = (time.perf_counter() - started) * 1e3
            with lock:
                latencies.append(elapsed)
                accepted += ok
                rejected += not ok and not err
                errors += err

    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(worker, clients))
    wall = time.perf_counter() - started
    for client in clients:
        client.close()
    return {
        "concurrency": concurrency,
        "images": len(images),
        "accepted": accepted,
        "rejected": rejected,
        "errors": errors,
        "wall_s": wall,
        "faces_per_s": len(images) / wall,
        "templates_per_s": accepted / wall,
        "latency_ms_p50": pct(latencies, 50),
        "latency_ms_p95": pct(latencies, 95),
        "loadavg_1m": load1(),
    }


def bench_enrollment(
    workdir: Path,
    images: list[tuple[str, bytes]],
    levels: list[int],
    store_kind: str,
    store_env: dict[str, str],
) -> list[dict[str, Any]]:
    data = workdir / f"enroll-{store_kind}"
    server = spawn_server(workdir, data, {"BIOVERIFY_STORE": store_kind, **store_env}, data.name)
    ready = wait_serving(server, 300)
    log(f"enrollment server ({store_kind}) serving after {ready:.1f} s")
    rows = []
    try:
        enroll_level(server.target, images[:4], 2, f"warm-{store_kind}")
        for c in levels:
            row = {"store": store_kind, **enroll_level(server.target, images, c, f"c{c}")}
            log(
                f"enroll {store_kind} c={c}: {row['faces_per_s']:.1f} faces/s "
                f"(p50 {row['latency_ms_p50']:.0f} ms, load {row['loadavg_1m']})"
            )
            rows.append(row)
    finally:
        rows_rss = vm_hwm(server.proc.pid)
        stop_server(server)
    for row in rows:
        row["server_peak_rss_mb"] = rows_rss / 2**20
    return rows


# -- 2. replica start ------------------------------------------------------------------------
def fill(store: TemplateStore, model: str, dim: int, start: int, count: int) -> float:
    """``count`` synthetic unit-norm templates (one sample each, a 64-hex sample id) via
    ``save_many``; returns seconds."""
    rng = np.random.default_rng(start)
    started = time.perf_counter()
    done = 0
    while done < count:
        n = min(FILL_BATCH, count - done)
        v = rng.standard_normal((n, dim), dtype=np.float32)
        v /= np.linalg.norm(v, axis=1, keepdims=True)
        base = start + done
        store.save_many(
            [
                TemplateWrite(
                    tenant="",
                    subject_id=f"syn-{base + j:08d}",
                    modality="face",
                    model=model,
                    new_samples=v[j : j + 1],
                    sample_ids=[f"{base + j:064x}"],
                )
                for j in range(n)
            ]
        )
        done += n
        if (start + done) % 100_000 == 0:
            log(f"  filled {start + done} ({done / (time.perf_counter() - started):.0f}/s)")
    return time.perf_counter() - started


def add_one_by_one(store: TemplateStore, model: str, dim: int, start: int, count: int) -> float:
    rng = np.random.default_rng(10**9 + start)
    started = time.perf_counter()
    for i in range(start, start + count):
        v = rng.standard_normal(dim).astype(np.float32)
        store.save(
            TemplateWrite(
                tenant="",
                subject_id=f"late-{i:08d}",
                modality="face",
                model=model,
                new_samples=(v / np.linalg.norm(v))[None],
                metadata={},
                replace=False,
                sample_ids=[f"{i:064x}"],
            )
        )
    return time.perf_counter() - started


def start_once(
    workdir: Path, data: Path, store_env: dict[str, str], tag: str, timeout: float
) -> dict[str, Any]:
    load_before = load1()
    server = spawn_server(workdir, data, store_env, tag)
    try:
        ready = wait_serving(server, timeout)
        peak = vm_hwm(server.proc.pid)
        deadline = time.monotonic() + 30  # SERVING is set just before start() records
        while not server.phases_file.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        phases = stop_server(server)

    def f(key: str) -> float:
        return float(phases.get(f"face.{key}", 0.0))

    restore_all = sum(v for k, v in phases.items() if k.endswith(".restore"))
    start_s = float(phases.get("start_s", 0.0))
    rebuild, build_index = f("rebuild"), f("_partition")
    return {
        "ready_s": ready,
        "how": phases.get("face.how", "?"),
        "gallery": phases.get("gallery_sizes", {}).get("face", 0),
        "index": phases.get("gallery_kinds", {}).get("face", {}),
        "phases_s": {
            "python_start": float(phases.get("t_entry", server.started)) - server.started,
            "imports": float(phases.get("t_imported", 0.0)) - float(phases.get("t_entry", 0.0)),
            "build_models_and_store": float(phases.get("build_s", 0.0)),
            "gallery_restore": f("restore"),
            "read_from_store": rebuild - build_index,
            "of_which_store_iter": float(phases.get("store.iter_templates", 0.0)),
            "index_build": build_index,
            "snapshot_load": f("load"),
            "catch_up": f("catch_up"),
            "maintain": f("maintain"),
            "other_galleries_restore": restore_all - f("restore"),
            "warm_up_and_rest": start_s - restore_all,
            "probe_after_serving": server.started + ready - float(phases.get("t_serving", 0.0)),
            "snapshot_save_at_stop": f("save"),
            "stop_wall": float(phases.get("stop_wall_s", 0.0)),
        },
        "server_peak_rss_mb": max(peak, int(phases.get("maxrss_bytes", 0))) / 2**20,
        "loadavg_1m_before": load_before,
        "loadavg_1m": load1(),
    }


def bench_start(
    workdir: Path,
    store_kind: str,
    sizes: list[int],
    catch_up: int,
    pack: PackManifest,
    redis_proc: RedisProcess | None,
    timeout: float,
    budget_s: float | None = None,
) -> list[dict[str, Any]]:
    """Cold and warm start at each size (cumulative). With ``budget_s``, a size is skipped
    when the previous size's fill rate and start times extrapolate (linearly) past it."""
    data = workdir / f"start-{store_kind}"
    store: TemplateStore
    store_env = {"BIOVERIFY_STORE": store_kind}
    if store_kind == "redis":
        assert redis_proc is not None
        redis_proc.client.flushall()
        redis_proc.rewrite_aof()
        store = RedisTemplateStore(redis_proc.url(2), socket_timeout=60)
        store_env["BIOVERIFY_REDIS_URL"] = redis_proc.url(2)
    else:
        store = SqliteTemplateStore(data / "bioverify.sqlite3")
    model, dim = pack.template_model, pack.embedding_dim
    rows: list[dict[str, Any]] = []
    count, late = 0, 0
    try:
        for n in sorted(sizes):
            if budget_s is not None and rows:
                prev = rows[-1]
                scale = n / prev["templates"]
                estimate = (n - count) / prev["fill_per_s"] + scale * (
                    prev["cold"]["ready_s"] + prev["warm"]["ready_s"]
                )
                if estimate > budget_s:
                    log(f"{store_kind} {n}: skipped (estimate {estimate:.0f} s > {budget_s:.0f} s)")
                    rows.append(
                        {"store": store_kind, "templates": n, "skipped": True,
                         "estimate_s": estimate, "budget_s": budget_s}
                    )  # fmt: skip
                    break
            load_before = load1()
            fill_s = fill(store, model, dim, count, n - count)
            filled = n - count
            count = n
            log(f"{store_kind}: filled to {n} in {fill_s:.0f} s ({filled / fill_s:.0f}/s)")
            row: dict[str, Any] = {
                "store": store_kind,
                "templates": n,
                "fill_s": fill_s,
                "fill_per_s": filled / fill_s,
                "fill_loadavg_1m": [load_before, load1()],
            }
            if store_kind == "redis":
                assert redis_proc is not None
                info = redis_proc.client.info("memory")
                row["store_aof_bytes_as_written"] = redis_proc.aof_bytes()
                redis_proc.rewrite_aof()
                row["store_bytes_on_disk"] = redis_proc.aof_bytes()
                row["redis_used_memory_bytes"] = int(info["used_memory"])
                row["redis_used_memory_per_template"] = int(info["used_memory"]) / n
            else:
                with sqlite3.connect(data / "bioverify.sqlite3") as conn:  # fold the WAL in
                    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                row["store_bytes_on_disk"] = sum(
                    path_bytes(p) for p in data.glob("bioverify.sqlite3*")
                )
            row["store_bytes_per_template"] = row["store_bytes_on_disk"] / n
            shutil.rmtree(data / "index", ignore_errors=True)  # cold: no snapshot
            row["cold"] = start_once(workdir, data, store_env, f"{store_kind}-{n}-cold", timeout)
            log(f"{store_kind} {n}: cold start {row['cold']['ready_s']:.1f} s")
            snapshot = data / "index" / "face"
            row["snapshot_bytes"] = path_bytes(snapshot)
            row["snapshot_bytes_per_template"] = row["snapshot_bytes"] / n
            row["catch_up_templates"] = catch_up
            row["catch_up_enroll_s"] = add_one_by_one(store, model, dim, late, catch_up)
            late += catch_up
            count += catch_up
            row["warm"] = start_once(workdir, data, store_env, f"{store_kind}-{n}-warm", timeout)
            log(f"{store_kind} {n}: warm start {row['warm']['ready_s']:.1f} s")
            rows.append(row)
    finally:
        store.close()
    return rows


# -- report ----------------------------------------------------------------------------------
def print_report(result: dict[str, Any]) -> None:
    print("\nEnrollment over gRPC (one image per EnrollFace, one subject per image)")
    print(f"{'store':7} {'conc':>4} {'faces/s':>8} {'p50 ms':>7} {'p95 ms':>7} {'ok/rej/err':>11} "
          f"{'load1':>6}")  # fmt: skip
    for r in result["enrollment"]:
        print(
            f"{r['store']:7} {r['concurrency']:>4} {r['faces_per_s']:>8.1f} "
            f"{r['latency_ms_p50']:>7.0f} {r['latency_ms_p95']:>7.0f} "
            f"{r['accepted']:>4}/{r['rejected']}/{r['errors']:<3} {r['loadavg_1m']:>6}"
        )
    inf = result["inference"]
    print(
        f"in-process inference (decode+detect+align+embed, 1 thread): "
        f"{inf['inference_ms_mean']:.1f} ms/face mean, p50 {inf['inference_ms_p50']:.1f} "
        f"(load {inf['loadavg_1m']})"
    )
    for s in result["store_saves"]:
        print(
            f"in-process save ({s['store']}, {s['saves']} saves): "
            f"{s['save_ms_mean']:.2f} ms mean, p50 {s['save_ms_p50']:.2f}, "
            f"p95 {s['save_ms_p95']:.2f} (load {s['loadavg_1m']})"
        )
    print("\nReplica start (fresh process, spawn -> health SERVING)")
    head = (
        f"{'store':7} {'N':>9} {'mode':5} {'ready s':>8} {'read':>6} {'build':>6} {'load':>6} "
        f"{'catchup':>7} {'import':>6} {'models':>6} {'warmup':>6} {'RSS MB':>7} {'load1':>6}"
    )
    print(head)
    started = [r for r in result["replica_start"] if not r.get("skipped")]
    for r in result["replica_start"]:
        if r.get("skipped"):
            print(f"{r['store']:7} {r['templates']:>9} skipped: estimated {r['estimate_s']:.0f} s "
                  f"> budget {r['budget_s']:.0f} s")  # fmt: skip
    for r in started:
        for mode in ("cold", "warm"):
            m = r[mode]
            p = m["phases_s"]
            print(
                f"{r['store']:7} {m['gallery']:>9} {mode:5} {m['ready_s']:>8.1f} "
                f"{p['read_from_store']:>6.1f} {p['index_build']:>6.1f} "
                f"{p['snapshot_load']:>6.1f} {p['catch_up']:>7.2f} {p['imports']:>6.1f} "
                f"{p['build_models_and_store']:>6.1f} {p['warm_up_and_rest']:>6.1f} "
                f"{m['server_peak_rss_mb']:>7.0f} {m['loadavg_1m']:>6}"
            )
    print(f"\n{'store':7} {'N':>9} {'fill/s':>8} {'store B/tpl':>11} {'snapshot B/tpl':>14} "
          f"{'catch-up enroll/s':>17}")  # fmt: skip
    for r in started:
        print(
            f"{r['store']:7} {r['templates']:>9} {r['fill_per_s']:>8.0f} "
            f"{r['store_bytes_per_template']:>11.0f} {r['snapshot_bytes_per_template']:>14.0f} "
            f"{r['catch_up_templates'] / r['catch_up_enroll_s']:>17.0f}"
        )
    print(
        "\nload1 = 1-minute load average on this shared machine "
        f"({os.cpu_count()} CPUs); timings under load include waiting for a core."
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=Path, default=SHARED / "data" / "face_images.tsv")
    parser.add_argument("--limit", type=int, default=None, help="use only the first N images")
    parser.add_argument("--concurrency", default="1,2,4")
    parser.add_argument("--saves", type=int, default=2000)
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--redis", action="store_true", help="also measure a Redis store")
    parser.add_argument("--redis-sizes", default="100000")
    parser.add_argument(
        "--redis-budget",
        type=float,
        default=600.0,
        help="skip a larger Redis size when its fill + starts extrapolate past this (s)",
    )
    parser.add_argument("--catch-up", type=int, default=1000)
    parser.add_argument("--start-timeout", type=float, default=1200.0)
    parser.add_argument("--workdir", type=Path, default=None, help="default: a temp dir")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    parser.add_argument(
        "--out", type=Path, default=REPO / "bench" / "results" / "gallery_bench.json"
    )
    args = parser.parse_args()

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="gallery-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    levels = [int(x) for x in args.concurrency.split(",") if x]
    stores = ["sqlite", "redis"] if args.redis else ["sqlite"]
    redis_proc = RedisProcess(workdir / "redis") if args.redis else None
    pack = PackCatalog(MODELS, workdir / "packs").choose("face", "auto")
    result: dict[str, Any] = {
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "loadavg_at_start": os.getloadavg(),
        },
        "face_pack": {"id": pack.id, "model": pack.template_model, "dim": pack.embedding_dim},
        "settings": {
            "concurrency": levels,
            "saves": args.saves,
            "sizes": args.sizes,
            "redis_sizes": args.redis_sizes if args.redis else None,
            "catch_up": args.catch_up,
            "redis_aof": "appendonly yes, appendfsync everysec" if args.redis else None,
            "sqlite": "WAL, synchronous=FULL (the store's own settings)",
            "server": "bioverify serve defaults (inference_workers 2, onnx_threads 1, "
            "voice pack auto, gallery_exact_max 50000 -> pq-fastscan above)",
        },
    }
    try:
        images = read_images(args.images, args.limit)
        log(f"{len(images)} images; inference split in-process")
        result["inference"], embeddings = inference_split(images)
        result["store_saves"] = [
            time_saves(SqliteTemplateStore(workdir / "saves" / "s.sqlite3"), embeddings, args.saves)
        ]
        if redis_proc is not None:
            rs = RedisTemplateStore(redis_proc.url(1))
            result["store_saves"].append(time_saves(rs, embeddings, args.saves))
            rs.close()
        log(f"store saves: {[round(s['save_ms_mean'], 2) for s in result['store_saves']]} ms")
        result["enrollment"] = []
        for kind in stores:
            env = {"BIOVERIFY_REDIS_URL": redis_proc.url(0)} if redis_proc is not None else {}
            result["enrollment"] += bench_enrollment(workdir, images, levels, kind, env)
        result["replica_start"] = bench_start(
            workdir,
            "sqlite",
            [int(x) for x in args.sizes.split(",") if x],
            args.catch_up,
            pack,
            None,
            args.start_timeout,
        )
        if redis_proc is not None:
            result["replica_start"] += bench_start(
                workdir,
                "redis",
                [int(x) for x in args.redis_sizes.split(",") if x],
                args.catch_up,
                pack,
                redis_proc,
                args.start_timeout,
                args.redis_budget,
            )
    finally:
        if redis_proc is not None:
            redis_proc.stop()
        result["machine"]["loadavg_at_end"] = os.getloadavg()
        result["elapsed_s"] = time.monotonic() - T0
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=1))
        if not args.keep and args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    print_report(result)
    print(f"\nwrote {args.out} ({result['elapsed_s'] / 60:.1f} min)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
