"""Voice benchmark, all measured side by side in one run:

1. VerifyVoice over gRPC (real server on loopback) for clips of exactly 3 s and 10 s, p50 / p95,
   against the raw model in a bare script (soundfile + kaldi-native-fbank + CAM++ on
   onnxruntime, no bioverify code), with the service's own stages timed in-process to show
   where the overhead goes;
2. VerifyVoiceStream: a ~60 s call as 20 ms G.711 mu-law chunks at 8 kHz, sent as fast as
   possible (real-time factor = processing time / audio duration) and paced in real time
   (latency of each interim result after the chunk that completed it);
3. accuracy on speaker_trials.tsv, clean and over a telephone line (mu-law 8 kHz on both
   sides): the service (CompareVoices, the `eval speaker-trials` code path), the raw CAM++
   script, Resemblyzer as its users run it (preprocess_wav + VoiceEncoder.embed_utterance),
   and the service serving the GE2E pack exported from Resemblyzer's wheel (``mel-ge2e``);
   plus the speed of each encoder in ms per second of audio.

Every model runs with one intra-op thread (the service's default ``onnx_threads``; torch is set
to one thread too), so speeds compare like for like. Needs the bench extra:
``pip install -e '.[bench]'``.

Prints a table and writes JSON to bench/results/voice_bench.json.

    python bench/voice_bench.py [--trials ../shared/data/speaker_trials.tsv] [--limit N]
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

os.environ["ORT_DISABLE_TELEMETRY"] = "1"

import numpy as np
import soundfile as sf

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("BIOVERIFY_SHARED_DIR", REPO.parent / "shared"))

from bioverify import metrics  # noqa: E402
from bioverify.client import BioverifyClient  # noqa: E402
from bioverify.packs import PackCatalog  # noqa: E402
from bioverify.server.app import audio_limits, build, build_voice_pipeline  # noqa: E402
from bioverify.settings import Settings  # noqa: E402
from bioverify.voice.audio_decode import decode_audio, mulaw_decode, mulaw_encode, resample  # noqa: E402
from bioverify_admin.datasets import Pair, read_speaker_trials, read_speaker_utterances  # noqa: E402
from bioverify_admin.eval_voice import evaluate_speaker_trials, telephony_bytes  # noqa: E402

CAMPPLUS = SHARED / "models" / "campplus_3dspeaker" / "campplus_cn_en_common.onnx"
DATA = SHARED / "data"
RATE = 16000
TEL_RATE = 8000
GE2E_PACK = "voice-ge2e-resemblyzer"


def pct(values: Sequence[float], q: float) -> float:
    return float(np.percentile(values, q)) if len(values) else float("nan")


def wav_bytes(wave: np.ndarray, rate: int = RATE) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, wave, rate, format="WAV", subtype="PCM_16")
    return buf.getvalue()


def read_wave(path: Path) -> tuple[np.ndarray, int]:
    wave, rate = sf.read(str(path), dtype="float32", always_2d=True)
    return np.ascontiguousarray(wave.mean(axis=1), dtype=np.float32), int(rate)


def telephony_wave(path: Path) -> np.ndarray:
    """The clip after a phone line: 8 kHz mu-law, decoded back to float (for the bare scripts)."""
    return mulaw_decode(telephony_bytes(path))


def accuracy_block(
    scores: Sequence[float], labels: Sequence[bool], threshold: float | None = None
) -> dict[str, float]:
    s, y = np.asarray(scores, dtype=np.float64), np.asarray(labels, dtype=bool)
    out = {
        "eer": metrics.eer(s, y),
        "auc": metrics.auc(s, y),
        "min_dcf_p001": metrics.min_dcf(s, y, p_target=0.01),
        "best_accuracy": max(metrics.accuracy_at(s, y, t) for t in np.unique(s)),
    }
    if threshold is not None:
        out["accuracy_at_threshold"] = metrics.accuracy_at(s, y, threshold)
        out["threshold"] = threshold
    return out


# -- clips of exact lengths ----------------------------------------------------------------------
def exact_clips(by_speaker: dict[str, list[Path]], seconds: float, per_speaker: int) -> list[bytes]:
    """WAV files of exactly ``seconds``, cut from each speaker's utterances played back to back
    (every 10-utterance speaker, ``per_speaker`` consecutive windows each)."""
    n = round(seconds * RATE)
    clips: list[bytes] = []
    for paths in by_speaker.values():
        stream = np.concatenate([read_wave(p)[0] for p in paths])
        while stream.size < n * per_speaker:
            stream = np.concatenate([stream, stream])
        clips.extend(wav_bytes(stream[i * n : (i + 1) * n]) for i in range(per_speaker))
    return clips


# -- the raw model, as a developer would script it -----------------------------------------------
class RawCampplus:
    """soundfile + kaldi-native-fbank (80 bins, no dither) + CMN + CAM++ on onnxruntime."""

    def __init__(self, threads: int = 1) -> None:
        import kaldi_native_fbank as knf
        import onnxruntime as ort

        self.knf = knf
        self.opts = knf.FbankOptions()
        self.opts.frame_opts.dither = 0.0
        self.opts.mel_opts.num_bins = 80
        so = ort.SessionOptions()
        so.intra_op_num_threads = threads
        so.inter_op_num_threads = 1
        self.session = ort.InferenceSession(str(CAMPPLUS), so, providers=["CPUExecutionProvider"])

    def embed_wave(self, wave: np.ndarray, rate: int) -> np.ndarray:
        if rate != RATE:
            from scipy.signal import resample_poly

            wave = resample_poly(wave, RATE, rate).astype(np.float32)
        fb = self.knf.OnlineFbank(self.opts)
        fb.accept_waveform(float(RATE), wave)
        fb.input_finished()
        feats = np.stack([fb.get_frame(i) for i in range(fb.num_frames_ready)])
        feats = feats - feats.mean(axis=0, keepdims=True)
        (emb,) = self.session.run(None, {"feats": feats[None].astype(np.float32)})
        return np.asarray(emb[0] / np.linalg.norm(emb[0]))

    def embed_bytes(self, data: bytes) -> np.ndarray:
        wave, rate = sf.read(io.BytesIO(data), dtype="float32")
        return self.embed_wave(wave, rate)


class Resemblyzer:
    """What Resemblyzer's README does: preprocess_wav (resample, -30 dBFS, webrtcvad trimming),
    then VoiceEncoder.embed_utterance (1.6 s partials, averaged)."""

    def __init__(self) -> None:
        import torch

        torch.set_num_threads(1)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from resemblyzer import VoiceEncoder, preprocess_wav

        self.preprocess = preprocess_wav
        self.encoder = VoiceEncoder(device="cpu", verbose=False)

    def embed_wave(self, wave: np.ndarray, rate: int) -> np.ndarray:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            wav = self.preprocess(wave, source_sr=rate if rate != RATE else None)
        return np.asarray(self.encoder.embed_utterance(wav))


def embed_all(
    embed: Callable[[np.ndarray, int], np.ndarray], waves: dict[Path, tuple[np.ndarray, int]]
) -> tuple[dict[Path, np.ndarray], float]:
    """Embeddings of every clip, and the cost in CPU ms per second of audio (single-threaded
    code, so CPU time is the wall time it would take on an idle core)."""
    out, spent, audio = {}, 0.0, 0.0
    for path, (wave, rate) in waves.items():
        t0 = time.process_time()
        out[path] = embed(wave, rate)
        spent += time.process_time() - t0
        audio += wave.size / rate
    return out, 1e3 * spent / audio


def score_trials(embeddings: dict[Path, np.ndarray], trials: list[Pair]) -> list[float]:
    return [float(embeddings[t.path_a] @ embeddings[t.path_b]) for t in trials]


# -- 1. VerifyVoice latency ----------------------------------------------------------------------
def bench_verify(
    client: BioverifyClient,
    settings: Settings,
    clips: dict[str, list[bytes]],
    raw: RawCampplus,
    repeats: int,
) -> dict[str, Any]:
    pack = PackCatalog(settings.model_dir, settings.data_dir / "packs").choose("voice", "auto")
    pipeline = build_voice_pipeline(settings, pack)
    limits = audio_limits(settings)
    out: dict[str, Any] = {}
    for name, items in clips.items():
        seconds = float(name.rstrip("s"))
        for data in items[:3]:  # warm both paths
            client.verify_voice("bench-verify", client.audio(data))
            raw.embed_bytes(data)
        service, bare, decode, analyse, vad, encode = [], [], [], [], [], []
        service_cpu, bare_cpu = [], []
        load = os.getloadavg()[0]
        for i in range(repeats):
            data = items[i % len(items)]
            c0, t0 = time.process_time(), time.perf_counter()
            client.verify_voice("bench-verify", client.audio(data))
            service.append(1e3 * (time.perf_counter() - t0))
            service_cpu.append(1e3 * (time.process_time() - c0))
            c0, t0 = time.process_time(), time.perf_counter()
            raw.embed_bytes(data)
            bare.append(1e3 * (time.perf_counter() - t0))
            bare_cpu.append(1e3 * (time.process_time() - c0))
            # The service's stages in-process, on the same clip.
            t0 = time.perf_counter()
            decoded = decode_audio(data, limits=limits)
            t1 = time.perf_counter()
            pipeline.analyse(decoded)
            t2 = time.perf_counter()
            pipeline.vad.speech_segments(decoded.samples)
            t3 = time.perf_counter()
            pipeline.encoder.embed(decoded.samples)
            t4 = time.perf_counter()
            decode.append(1e3 * (t1 - t0))
            analyse.append(1e3 * (t2 - t1))
            vad.append(1e3 * (t3 - t2))
            encode.append(1e3 * (t4 - t3))
        out[name] = {
            "n_requests": repeats,
            "n_distinct_clips": len(items),
            "service_p50_ms": pct(service, 50),
            "service_p95_ms": pct(service, 95),
            "raw_p50_ms": pct(bare, 50),
            "raw_p95_ms": pct(bare, 95),
            "service_min_ms": min(service),
            "raw_min_ms": min(bare),
            "raw_ms_per_audio_s": pct(bare, 50) / seconds,
            "overhead_ratio_p50": pct(service, 50) / pct(bare, 50),
            "overhead_ratio_p95": pct(service, 95) / pct(bare, 95),
            "overhead_ratio_min": min(service) / min(bare),
            # CPU time of this whole process (client, server threads, raw script) per request:
            # insensitive to other processes competing for the cores.
            "service_cpu_p50_ms": pct(service_cpu, 50),
            "raw_cpu_p50_ms": pct(bare_cpu, 50),
            "raw_cpu_ms_per_audio_s": pct(bare_cpu, 50) / seconds,
            "overhead_ratio_cpu_p50": pct(service_cpu, 50) / pct(bare_cpu, 50),
            "load_average_1m": [load, os.getloadavg()[0]],
            "in_process_p50_ms": {
                "decode": pct(decode, 50),
                "pipeline_analyse": pct(analyse, 50),
                "of_which_vad": pct(vad, 50),
                "of_which_encoder": pct(encode, 50),
            },
        }
    return out


# -- 2. VerifyVoiceStream ------------------------------------------------------------------------
def call_audio(paths: list[Path], seconds: float) -> np.ndarray:
    """A call of exactly ``seconds`` at 8 kHz: the speaker's utterances back to back, looped."""
    stream = np.concatenate([resample(read_wave(p)[0], RATE, TEL_RATE) for p in paths])
    n = round(seconds * TEL_RATE)
    while stream.size < n:
        stream = np.concatenate([stream, stream])
    return np.ascontiguousarray(stream[:n], dtype=np.float32)


def bench_stream(client: BioverifyClient, call8: np.ndarray, *, paced: bool) -> dict[str, Any]:
    data = mulaw_encode(call8)
    chunk = TEL_RATE * 20 // 1000  # 20 ms of mu-law = 160 bytes
    chunks = [data[i : i + chunk] for i in range(0, len(data), chunk)]
    sent: list[float] = []
    lock = threading.Lock()

    def requests() -> Iterator[bytes]:
        start = time.perf_counter()
        for i, c in enumerate(chunks):
            if paced:  # a chunk exists once its 20 ms have been spoken
                delay = start + (i + 1) * 0.02 - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
            with lock:
                sent.append(time.perf_counter())
            yield c

    replies = []
    for reply in client.verify_voice_stream(
        "bench-stream", requests(), encoding="MULAW", sample_rate_hz=TEL_RATE, timeout=600
    ):
        replies.append((time.perf_counter(), reply))
    duration = call8.size / TEL_RATE
    first = sent[0]
    final_t, final = replies[-1]
    interims = [(t, r) for t, r in replies if not r.final]
    latencies = []
    for t, r in interims:
        k = min(len(sent), max(1, int(np.ceil(r.call_seconds / 0.02 - 1e-6)))) - 1
        latencies.append(1e3 * (t - sent[k]))
    return {
        "paced_in_real_time": paced,
        "call_seconds": duration,
        "chunks": len(chunks),
        "wall_seconds": final_t - first,
        "real_time_factor": (final_t - first) / duration,
        "n_interim": len(interims),
        "interim_latency_p50_ms": pct(latencies, 50),
        "interim_latency_max_ms": max(latencies) if latencies else float("nan"),
        "final_latency_ms": 1e3 * (final_t - sent[-1]),
        "final_net_speech_s": final.net_speech_seconds,
        "final_similarity": final.match.similarity,
        "final_decision": int(final.decision),
    }


# -- 3. accuracy ---------------------------------------------------------------------------------
def service_accuracy(
    settings: Settings, trials: list[Pair], concurrency: int
) -> dict[str, dict[str, Any]]:
    app = build(settings)
    app.start()
    out: dict[str, dict[str, Any]] = {}
    try:
        with BioverifyClient(f"127.0.0.1:{app.port}", timeout=120, retries=0) as client:
            client.wait_until_serving()
            for tel in (False, True):
                t0 = time.perf_counter()
                r = evaluate_speaker_trials(client, trials, telephony=tel, concurrency=concurrency)
                r["wall_s"] = time.perf_counter() - t0
                out["telephony" if tel else "clean"] = r
    finally:
        app.stop(grace=1.0)
    return out


def prepare_ge2e_pack(settings: Settings, utterances: Path) -> str:
    """Export Resemblyzer's GE2E encoder to a pack, import it into ``settings.data_dir`` and
    calibrate it on all pairs of ``utterances`` (the CAM++ pack's protocol)."""
    from bioverify.voice.export_ge2e import write_pack
    from bioverify_admin import calibrate, models_cmd

    with tempfile.TemporaryDirectory() as tmp:
        write_pack(Path(tmp))
        pack = models_cmd.import_pack(Path(tmp), settings.data_dir / "packs")
    pipeline = build_voice_pipeline(settings, pack)
    labelled = read_speaker_utterances(utterances)
    embeddings = calibrate.embed_voice_files(
        pipeline, audio_limits(settings), [i.path for i in labelled]
    )
    scores = calibrate.scores_from_identities(
        embeddings,
        {i.path: i.identity for i in labelled},
        f"all pairs of {utterances.name} ({len(labelled)} samples)",
    )
    calibration, points = calibrate.fit_calibration(scores, [1e-2, 1e-3, 1e-4])
    if pack.manifest_path is None:
        raise RuntimeError(f"imported pack {pack.id} has no manifest file")
    calibrate.write_into_manifest(pack.manifest_path, calibration, points, "fmr_1e-3")
    return pack.id


def git_state() -> str:
    try:
        head = subprocess.run(
            ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(REPO), "status", "--porcelain"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("+uncommitted" if dirty else "")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--trials", type=Path, default=DATA / "speaker_trials.tsv")
    parser.add_argument("--utterances", type=Path, default=DATA / "speaker_utterances.tsv")
    parser.add_argument("--limit", type=int, default=0, help="first N trials only")
    parser.add_argument("--repeats", type=int, default=40, help="VerifyVoice requests per length")
    parser.add_argument("--concurrency", type=int, default=2, help="for the accuracy runs")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "voice_bench.json")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    trials = read_speaker_trials(args.trials)
    if args.limit:
        trials = trials[: args.limit]
    labelled = read_speaker_utterances(args.utterances)
    by_speaker: dict[str, list[Path]] = {}
    for item in labelled:
        if item.path.parent.name != "impostors":
            by_speaker.setdefault(item.identity, []).append(item.path)
    results: dict[str, Any] = {
        "trials": str(args.trials),
        "n_trials": len(trials),
        "n_target": sum(t.same for t in trials),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "code": git_state(),
    }
    raw = RawCampplus(threads=1)

    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(
            port=0, data_dir=Path(tmp), model_dir=SHARED / "models", log_level="WARNING"
        )
        results["settings"] = {
            "onnx_threads": settings.onnx_threads,
            "inference_workers": settings.inference_workers,
        }
        # 1 + 2: latency on one server.
        app = build(settings)
        app.start()
        try:
            with BioverifyClient(f"127.0.0.1:{app.port}", timeout=600, retries=0) as client:
                client.wait_until_serving()
                models = client.service_info().models
                info = [m for m in models if m.role == "speaker"]
                results["voice_pack"] = info[0].pack if info else "?"
                enrol = by_speaker["libri_2033"][:3]
                client.enroll_voice("bench-verify", [client.audio(p.read_bytes()) for p in enrol])
                clips = {
                    "3s": exact_clips(by_speaker, 3.0, 2),
                    "10s": exact_clips(by_speaker, 10.0, 2),
                }
                print("VerifyVoice latency ...", flush=True)
                results["verify_voice"] = bench_verify(client, settings, clips, raw, args.repeats)
                speaker = by_speaker["libri_2414"]
                client.enroll_voice(
                    "bench-stream", [client.audio(p.read_bytes()) for p in speaker[:3]]
                )
                call = call_audio(speaker[3:], 60.0)
                print("VerifyVoiceStream ...", flush=True)
                bench_stream(client, call[: 5 * TEL_RATE], paced=False)  # warm-up
                results["stream_fast"] = bench_stream(client, call, paced=False)
                results["stream_paced"] = bench_stream(client, call, paced=True)
        finally:
            app.stop(grace=1.0)

        # 3: accuracy, the service with each pack.
        print("accuracy: service with CAM++ ...", flush=True)
        results["service_campplus"] = service_accuracy(settings, trials, args.concurrency)
        print("accuracy: service with the GE2E pack ...", flush=True)
        ge2e_id = prepare_ge2e_pack(settings, args.utterances)
        results["service_ge2e"] = service_accuracy(
            settings.with_overrides(voice_pack=ge2e_id), trials, args.concurrency
        )
        ge2e_manifest = json.loads(
            (settings.data_dir / "packs" / ge2e_id / "bioverify-pack.json").read_text()
        )
        results["ge2e_pack"] = {
            "id": ge2e_id,
            "operating_points": ge2e_manifest["operating_points"],
            "calibration": ge2e_manifest["calibration"],
            "encoder_params": ge2e_manifest["components"]["encoder"]["params"],
            "encoder_file": ge2e_manifest["files"]["encoder"],
        }
        # The GE2E ONNX adapter alone, for its speed.
        from bioverify.voice.encoder_onnx import OnnxSpeakerEncoder, ge2e_spec

        ge2e_encoder = OnnxSpeakerEncoder(
            ge2e_spec(settings.data_dir / "packs" / ge2e_id / "ge2e_resemblyzer.onnx")
        )
        cam_pipeline = build_voice_pipeline(
            settings,
            PackCatalog(settings.model_dir, settings.data_dir / "packs").get("voice-campplus"),
        )

    # 3: accuracy and speed of the bare scripts on the same trials.
    print("accuracy: raw CAM++ and Resemblyzer ...", flush=True)
    paths = sorted({t.path_a for t in trials} | {t.path_b for t in trials})
    clean = {p: read_wave(p) for p in paths}
    tel = {p: (telephony_wave(p), TEL_RATE) for p in paths}
    labels = [t.same for t in trials]
    service_threshold = results["service_campplus"]["clean"]["threshold"]
    resemblyzer = Resemblyzer()
    speeds: dict[str, float] = {}
    for name, embed in (("raw_campplus", raw.embed_wave), ("resemblyzer", resemblyzer.embed_wave)):
        for cond, waves in (("clean", clean), ("telephony", tel)):
            emb, ms = embed_all(embed, waves)
            threshold = service_threshold if name == "raw_campplus" else None
            results.setdefault(name, {})[cond] = accuracy_block(
                score_trials(emb, trials), labels, threshold
            )
            results[name][cond]["ms_per_audio_s"] = ms
        speeds[name] = results[name]["clean"]["ms_per_audio_s"]
    speeds["ge2e_onnx_adapter"] = embed_all(lambda w, r: ge2e_encoder.embed(w), clean)[1]
    speeds["campplus_adapter"] = embed_all(lambda w, r: cam_pipeline.encoder.embed(w), clean)[1]
    speeds["service_pipeline_campplus"] = embed_all(
        lambda w, r: (
            cam_pipeline.analyse(
                decode_audio(wav_bytes(w, r), limits=audio_limits(settings))
            ).embedding
        ),
        clean,
    )[1]
    results["speed_ms_per_audio_s"] = speeds

    print_table(results)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2, default=float) + "\n")
    print(f"\nwritten to {args.out}")
    return 0


def print_table(r: dict[str, Any]) -> None:
    print(f"\nVerifyVoice over gRPC vs the raw model (pack {r['voice_pack']}, code {r['code']})")
    print(
        f"{'clip':<6}{'svc p50':>9}{'svc p95':>9}{'raw p50':>9}{'raw p95':>9}{'ratio p50':>11}"
        f"{'ratio min':>11}{'CPU ms svc/raw':>16}{'ratio CPU':>11}{'raw CPU ms/s':>14}"
    )
    for name, v in r["verify_voice"].items():
        print(
            f"{name:<6}{v['service_p50_ms']:9.1f}{v['service_p95_ms']:9.1f}{v['raw_p50_ms']:9.1f}"
            f"{v['raw_p95_ms']:9.1f}{v['overhead_ratio_p50']:11.2f}{v['overhead_ratio_min']:11.2f}"
            f"{v['service_cpu_p50_ms']:9.1f} /{v['raw_cpu_p50_ms']:6.1f}"
            f"{v['overhead_ratio_cpu_p50']:11.2f}{v['raw_cpu_ms_per_audio_s']:14.1f}"
        )
    for name, v in r["verify_voice"].items():
        ip = v["in_process_p50_ms"]
        print(
            f"  {name} in-process p50 ms: decode {ip['decode']:.1f}, analyse "
            f"{ip['pipeline_analyse']:.1f} (VAD alone {ip['of_which_vad']:.1f}, encoder alone "
            f"{ip['of_which_encoder']:.1f}); load average {v['load_average_1m']}"
        )
    print("\nVerifyVoiceStream, 20 ms mu-law chunks at 8 kHz")
    for key in ("stream_fast", "stream_paced"):
        s = r[key]
        how = "paced 1x" if s["paced_in_real_time"] else "as fast as possible"
        print(
            f"  {how:<20} call {s['call_seconds']:.0f} s, wall {s['wall_seconds']:.2f} s, RTF "
            f"{s['real_time_factor']:.3f}, {s['n_interim']} interims, interim latency p50 "
            f"{s['interim_latency_p50_ms']:.0f} ms (max {s['interim_latency_max_ms']:.0f}), final "
            f"{s['final_latency_ms']:.0f} ms"
        )
    print(f"\nAccuracy on {r['n_trials']} trials ({r['n_target']} target)")
    print(
        f"{'system':<34}{'cond':<11}{'EER':>8}{'AUC':>8}{'minDCF':>8}{'acc@thr':>9}{'best acc':>9}"
    )
    rows = [
        ("bioverify CompareVoices, CAM++", r["service_campplus"], "accuracy"),
        ("bioverify CompareVoices, GE2E pack", r["service_ge2e"], "accuracy"),
        ("raw CAM++ (bare script)", r["raw_campplus"], "accuracy_at_threshold"),
        ("Resemblyzer (README usage)", r["resemblyzer"], None),
    ]
    for name, block, acc_key in rows:
        for cond in ("clean", "telephony"):
            v = block[cond]
            dcf = v.get("min_dcf_p001", float("nan"))
            acc = v.get(acc_key, float("nan")) if acc_key else float("nan")
            best = v.get("best_accuracy", float("nan"))
            print(
                f"{name:<34}{cond:<11}{v['eer']:8.4f}{v['auc']:8.4f}{dcf:8.4f}{acc:9.3f}{best:9.3f}"
            )
    print("\nencoder speed, CPU ms per second of audio (1 thread, clean trial clips)")
    for k, v in r["speed_ms_per_audio_s"].items():
        print(f"  {k:<28}{v:7.1f}")


if __name__ == "__main__":
    sys.exit(main())
