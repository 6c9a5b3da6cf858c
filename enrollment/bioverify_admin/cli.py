"""bioverify-admin: models, calibration, evaluation and subject administration."""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import secrets
import sys
import traceback
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bioverify.client import BioverifyClient, BioverifyClientError
from bioverify.errors import BioverifyError, ConfigurationError, InvalidInput
from bioverify.fileio import write_private_text
from bioverify.packs import NARROWBAND_CHANNEL, PackCatalog, PackManifest
from bioverify.scoring import operating_point_name
from bioverify.settings import Settings
from bioverify.subject_ids import legacy_subject_id_problem
from bioverify.usecases.common import validate_tenant
from bioverify_admin import models_cmd
from bioverify_admin.datasets import (
    DatasetError,
    LabelledImage,
    PadSample,
    read_face_pairs,
    read_identity_images,
    read_speaker_trials,
    read_speaker_utterances,
)
from bioverify_admin.journal import Journal, JournalError
from bioverify_admin.local_server import ServerStartError, local_server

if TYPE_CHECKING:
    from bioverify.scoring import OperatingPoint
    from bioverify_admin.bulk_enroll import RunReport
    from bioverify_admin.calibrate import ScoreSet
    from bioverify_admin.eval_face import PairEvaluation
    from bioverify_admin.eval_pad import PadEvaluation

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
EXIT_NOTHING_ACCEPTED = 3  # `enroll`: samples to enroll, and the service accepted none
EXIT_BROKEN_PIPE = 141  # the output's reader left (`| head`): 128 + SIGPIPE, said nothing
REPORT_HELP = "also write a self-contained HTML report (plots and tables) to this file"


def _json_default(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return None
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(type(value).__name__)


def _dump(value: Any) -> str:
    return json.dumps(_nan_to_none(value), indent=2, default=_json_default)


def _nan_to_none(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _nan_to_none(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_nan_to_none(v) for v in value]
    return value


class UsageError(Exception):
    """A bad option or a file named on the command line that cannot be used: exit 2."""


class CommandFailed(Exception):
    """The command could not do its work (e.g. the service cannot be reached): exit 1."""


UNREACHABLE_S = 5.0  # give up on a service that has not answered at all for this long
SERVING_S = 60.0  # wait this long for a service that answers but is still loading its models


def _read(path: Path | None, option: str) -> bytes | None:
    if path is None:
        return None
    try:
        return path.read_bytes()
    except OSError as exc:
        raise UsageError(f"{option}: cannot read {path}: {exc.strerror or exc}") from exc


def connect(
    args: argparse.Namespace, target: str, timeout: float = 120.0, token: str | None = None
) -> BioverifyClient:
    """A client with the command's TLS and token options (token also from BIOVERIFY_TOKEN,
    unless ``token`` is given)."""
    cert, key = getattr(args, "tls_cert", None), getattr(args, "tls_key", None)
    if (cert is None) != (key is None):
        raise UsageError("--tls-cert and --tls-key go together (mutual TLS)")
    if cert is not None and getattr(args, "tls_ca", None) is None:
        raise UsageError("--tls-cert/--tls-key need --tls-ca (the CA that signed the service)")
    return BioverifyClient(
        target,
        timeout=timeout,
        tls_ca=_read(getattr(args, "tls_ca", None), "--tls-ca"),
        tls_client_cert=_read(cert, "--tls-cert"),
        tls_client_key=_read(key, "--tls-key"),
        token=token or getattr(args, "token", None) or os.environ.get("BIOVERIFY_TOKEN") or None,
    )


def wait_serving(client: BioverifyClient, target: str, timeout: float = SERVING_S) -> None:
    """Wait until the service is SERVING; fail within ``UNREACHABLE_S`` when it does not
    answer at all (no such host, nothing listening, TLS mismatch)."""
    try:
        client.wait_until_serving(timeout=timeout, unreachable_timeout=UNREACHABLE_S)
    except BioverifyClientError as exc:
        raise CommandFailed(f"cannot reach the service at {target}: {exc}") from exc
    except TimeoutError as exc:
        raise CommandFailed(
            f"the service at {target} answers but is not serving after {timeout:.0f} s "
            "(still loading its models, or its template store is unreachable)"
        ) from exc


@contextmanager
def serving(
    args: argparse.Namespace, target: str, *, timeout: float = 120.0
) -> Iterator[BioverifyClient]:
    """A client of the service at ``target`` once it is serving (every command that talks to
    a ``--server`` goes through here, so all fail the same way when it cannot be reached)."""
    with connect(args, target, timeout=timeout) as client:
        wait_serving(client, target)
        yield client


@contextmanager
def _service(args: argparse.Namespace, server: str | None) -> Iterator[BioverifyClient]:
    """A client of the given service, or of a throwaway one started here."""
    if server:
        with serving(args, server) as client:
            yield client
        return
    packs = Settings.from_env().data_dir / "packs"  # built/imported packs travel along
    token = secrets.token_urlsafe(32)  # this run's alone: no other local user gets in
    with (
        local_server(packs_from=packs, token=token) as target,
        connect(args, target, token=token) as client,
    ):
        wait_serving(client, target, timeout=180.0)
        yield client


def _local_settings(args: argparse.Namespace) -> Settings:
    """Settings from the environment with the command's ``--model-dir`` / ``--data-dir``, which
    override them the way they do for ``bioverify serve``."""
    overrides = {
        name: getattr(args, name)
        for name in ("model_dir", "data_dir")
        if getattr(args, name, None) is not None
    }
    return Settings.from_env().with_overrides(**overrides)


def _catalog(args: argparse.Namespace) -> PackCatalog:
    """The packs ``bioverify serve`` would see: built-in ones with their files in the model
    directory, and those imported or built into ``DATA_DIR/packs``."""
    settings = _local_settings(args)
    return PackCatalog(settings.model_dir, settings.data_dir / "packs")


# -- models -------------------------------------------------------------------------------------
def cmd_models_list(args: argparse.Namespace) -> int:
    packs = models_cmd.list_packs(_catalog(args))
    if args.json:
        print(_dump(packs))
        return EXIT_OK
    for p in packs:
        state = "installed" if p["installed"] else "missing files"
        calibrated = "calibrated" if p["calibrated"] else "uncalibrated"
        print(f"{p['id']:<28} {p['modality']:<6} {state:<14} {calibrated:<12} {p['licence']}")
    return EXIT_OK


def _named_pack(catalog: PackCatalog, pack_id: str) -> PackManifest:
    """The pack ``pack_id`` of the command line; an unknown name is a usage error (exit 2)
    that lists the known ones."""
    try:
        return catalog.get(pack_id)
    except ConfigurationError as exc:
        raise UsageError(exc.message) from exc


def cmd_models_verify(args: argparse.Namespace) -> int:
    catalog = _catalog(args)
    if args.pack is not None:
        _named_pack(catalog, args.pack)
    results = models_cmd.verify(catalog, args.pack)
    if args.json:
        print(_dump(results))
    else:
        for r in results:
            print(f"{r['id']}: {'OK' if r['ok'] else 'FAILED'}")
            for f in r["files"]:
                if not f["ok"]:
                    print(f"  {f['path']}: {f['problem']}")
    return EXIT_OK if all(r["ok"] for r in results) else EXIT_FAILED


def cmd_models_import(args: argparse.Namespace) -> int:
    settings = _local_settings(args)
    pack = models_cmd.import_pack(args.directory, settings.data_dir / "packs")
    print(f"imported {pack.id} into {pack.root}")
    return EXIT_OK


def cmd_models_pull(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    pack = _named_pack(_catalog(args), args.pack)
    fetched = models_cmd.pull(pack, settings.model_dir if args.to is None else args.to)
    print(f"{pack.id}: {len(fetched)} file(s) downloaded and verified")
    return EXIT_OK


def cmd_models_build(args: argparse.Namespace) -> int:
    """Build a pack whose model file is exported from a checkpoint (needs torch)."""
    import importlib.util

    settings = _local_settings(args)
    model_dir = settings.model_dir
    packs_dir = settings.data_dir / "packs"
    if importlib.util.find_spec("torch") is None:
        print(
            f"bioverify-admin: building {args.pack} needs torch: pip install 'bioverify[build]'",
            file=sys.stderr,
        )
        return EXIT_FAILED
    from bioverify.antispoof.export_aasist import build_pack

    print(f"building {args.pack} from {model_dir} into {packs_dir} ...", file=sys.stderr)
    try:
        target = build_pack(model_dir, packs_dir)
    except ModuleNotFoundError as exc:
        print(
            f"bioverify-admin: building {args.pack} needs {exc.name}: "
            "pip install 'bioverify[build]'",
            file=sys.stderr,
        )
        return EXIT_FAILED
    built = models_cmd.describe_built(target)
    if args.json:
        print(_dump(built))
    else:
        print(f"built {built['id']} in {built['directory']}")
        for f in built["files"]:
            print(f"  {f['path']}  sha256 {f['sha256']}  {f['size_bytes']} B")
        parity = built["parity_max_abs_diff"]
        if parity is not None:
            print(f"  ONNX parity with torch: max abs diff {parity:.3g}")
    print("restart the service (same data directory) to use it", file=sys.stderr)
    return EXIT_OK


# -- calibrate ----------------------------------------------------------------------------------
def _scores_from_service(
    args: argparse.Namespace, catalog: PackCatalog
) -> tuple[PackManifest, ScoreSet]:
    """Pair scores from a running service (CompareFaces / CompareVoices), and the local
    manifest of the pack that service serves (to compare against and to write into)."""
    from bioverify_admin import calibrate
    from bioverify_admin.eval_face import run_face_pairs
    from bioverify_admin.eval_voice import run_speaker_trials

    role = "face-matcher" if args.modality == "face" else "speaker"
    face = args.modality == "face"
    pairs = read_face_pairs(args.pairs) if face else read_speaker_trials(args.pairs)
    with serving(args, args.server) as client:
        served = next((m.pack for m in client.service_info().models if m.role == role), "")
        if not served:
            raise ConfigurationError(f"the service at {args.server} serves no {args.modality} pack")
        if face:
            evaluation = run_face_pairs(client, pairs, concurrency=2)
        else:
            evaluation = run_speaker_trials(client, pairs, telephony=args.telephony, concurrency=2)
    pack = catalog.choose(args.modality, served)
    scores = calibrate.scores_from_results(
        [(r.same, r.similarity) for r in evaluation.results],
        f"pairs {args.pairs.name} scored by the service at {args.server}"
        + (" through 8 kHz G.711 mu-law" if args.telephony else ""),
    )
    return pack, scores


def cmd_calibrate(args: argparse.Namespace) -> int:
    from bioverify.server.app import audio_limits, build_face_pipeline, build_voice_pipeline
    from bioverify_admin import calibrate

    settings = Settings.from_env()
    catalog = PackCatalog(settings.model_dir, settings.data_dir / "packs")
    if args.telephony and args.modality != "voice":
        print("bioverify-admin: --telephony applies to voice only", file=sys.stderr)
        return EXIT_USAGE
    if args.server:
        if not args.pairs:
            print(
                "bioverify-admin: with --server, give --pairs (each pair is scored by the "
                "service's CompareFaces / CompareVoices)",
                file=sys.stderr,
            )
            return EXIT_USAGE
        pack, scores = _scores_from_service(args, catalog)
        return _finish_calibration(args, pack, scores)
    if args.modality == "face":
        pack = catalog.choose("face", args.pack or settings.face_pack)
        pairs = read_face_pairs(args.pairs) if args.pairs else []
        labelled = _labelled(read_identity_images(args.images), args.images) if args.images else []
        face_pipeline = build_face_pipeline(settings, pack)

        def embed(paths: list[Path]) -> dict[Path, Any]:
            return calibrate.embed_face_files(face_pipeline, paths)

    else:
        pack = catalog.choose("voice", args.pack or settings.voice_pack)
        pairs = read_speaker_trials(args.pairs) if args.pairs else []
        labelled = (
            _labelled(read_speaker_utterances(args.images), args.images) if args.images else []
        )
        voice_pipeline = build_voice_pipeline(settings, pack)

        def embed(paths: list[Path]) -> dict[Path, Any]:
            return calibrate.embed_voice_files(
                voice_pipeline, audio_limits(settings), paths, telephony=args.telephony
            )

    line = " through 8 kHz G.711 mu-law" if args.telephony else ""
    if pairs:
        embeddings = embed([p.path_a for p in pairs] + [p.path_b for p in pairs])
        scores = calibrate.scores_from_pairs(
            embeddings,
            [(p.path_a, p.path_b, p.same) for p in pairs],
            f"pairs {args.pairs.name}{line}",
        )
    else:
        embeddings = embed([i.path for i in labelled])
        scores = calibrate.scores_from_identities(
            embeddings,
            {i.path: i.identity for i in labelled},
            f"all pairs of {args.images.name} ({len(labelled)} samples){line}",
        )
    return _finish_calibration(args, pack, scores)


def _labelled(samples: list[LabelledImage], path: Path) -> list[LabelledImage]:
    """``samples`` when they give both genuine and impostor pairs, else a ``DatasetError``."""
    counts = Counter(s.identity for s in samples)
    if len(counts) < 2 or max(counts.values()) < 2:
        raise DatasetError(
            f"{path}: need at least two identities and one with two or more samples "
            f"(found {len(counts)} identities)"
        )
    return samples


def _finish_calibration(args: argparse.Namespace, pack: PackManifest, scores: ScoreSet) -> int:
    from bioverify_admin import calibrate

    if scores.genuine.size == 0 or scores.impostor.size == 0:
        raise CommandFailed(
            f"nothing to fit: {scores.genuine.size} genuine and {scores.impostor.size} impostor "
            f"score(s) ({scores.n_failed_images} sample(s) or pair(s) could not be scored)"
        )

    fmrs: list[float] = args.target_fmr
    calibration, points = calibrate.fit_calibration(scores, fmrs)
    channel = NARROWBAND_CHANNEL if args.telephony else ""
    current = pack.operating_points_for(channel)
    before = calibrate.report_rows(scores, current) if current else []
    after = calibrate.report_rows(scores, points)
    report = {
        "pack": pack.id,
        "channel": channel or "default",
        "n_genuine": int(scores.genuine.size),
        "n_impostor": int(scores.impostor.size),
        "n_failed_images": scores.n_failed_images,
        "calibration": calibration.to_dict(),
        "before": before,
        "after": after,
    }
    if args.json:
        print(_dump(report))
    else:
        print(f"pack {pack.id}: {scores.genuine.size} genuine, {scores.impostor.size} impostor")
        print(f"calibration: slope {calibration.slope:.3f} intercept {calibration.intercept:.3f}")
        for title, rows in (("before", before), ("after", after)):
            print(title)
            for row in rows:
                print(
                    f"  {row['operating_point']:<10} threshold {row['threshold']:.4f} "
                    f"FMR {row['measured_fmr']:.4f} FNMR {row['measured_fnmr']:.4f}"
                )
    if args.write:
        if pack.manifest_path is None:
            print("this pack has no manifest file to write into", file=sys.stderr)
            return EXIT_FAILED
        default_point = args.default or operating_point_name(fmrs[0])
        calibrate.write_into_manifest(
            pack.manifest_path, calibration, points, default_point, channel=channel
        )
        print(f"written into {pack.manifest_path}", file=sys.stderr)
    return EXIT_OK


# -- eval ---------------------------------------------------------------------------------------
def _report_folder_missing(args: argparse.Namespace) -> bool:
    """True, after saying so, when ``--report`` names a file in a folder that does not exist."""
    if args.report is not None and not args.report.parent.is_dir():
        print(f"bioverify-admin: no folder {args.report.parent} for the report", file=sys.stderr)
        return True
    return False


def _pair_report(
    path: Path,
    title: str,
    evaluation: PairEvaluation,
    points: tuple[list[OperatingPoint], str],
) -> None:
    from bioverify_admin.report_html import write_verification_report

    operating_points, default = points
    threshold = evaluation.summary["threshold"]
    if not math.isfinite(threshold):  # the replies' thresholds differed: use the default point
        threshold = next((p.threshold for p in operating_points if p.name == default), math.nan)
    write_verification_report(
        path,
        title=title,
        scores=evaluation.scores(),
        labels=evaluation.labels(),
        failed=evaluation.failed(),
        threshold=threshold,
        operating_point=default,
        summary=evaluation.summary,
        operating_points=operating_points,
    )
    print(f"report written to {path}", file=sys.stderr)


def cmd_eval_face_pairs(args: argparse.Namespace) -> int:
    from bioverify_admin.eval_face import run_face_pairs, service_operating_points

    if _report_folder_missing(args):
        return EXIT_USAGE
    pairs = read_face_pairs(args.pairs)
    with _service(args, args.server) as client:
        evaluation = run_face_pairs(client, pairs, concurrency=args.concurrency)
        points = service_operating_points(client, "face-matcher") if args.report else ([], "")
    result = evaluation.summary
    if args.report:
        _pair_report(args.report, f"Face verification: {args.pairs.name}", evaluation, points)
    _print_result(args, result)
    return EXIT_OK


def cmd_eval_speaker_trials(args: argparse.Namespace) -> int:
    from bioverify_admin.eval_face import service_operating_points
    from bioverify_admin.eval_voice import run_speaker_trials

    if _report_folder_missing(args):
        return EXIT_USAGE
    trials = read_speaker_trials(args.trials)
    with _service(args, args.server) as client:
        evaluation = run_speaker_trials(
            client, trials, telephony=args.telephony, concurrency=args.concurrency
        )
        points = service_operating_points(client, "speaker") if args.report else ([], "")
    result = evaluation.summary
    if args.report:
        title = f"Speaker verification: {args.trials.name}" + (
            " (telephony)" if args.telephony else ""
        )
        _pair_report(args.report, title, evaluation, points)
    _print_result(args, result)
    return EXIT_OK


def cmd_eval_face_identify(args: argparse.Namespace) -> int:
    from bioverify_admin.eval_identify import run_face_identification

    if _report_folder_missing(args):
        return EXIT_USAGE
    images = read_identity_images(args.images)
    with _service(args, args.server) as client:
        evaluation = run_face_identification(client, images, holdout_share=args.holdout_share)
    result = evaluation.summary
    if args.report and (evaluation.mated_scores.size == 0 or evaluation.nonmated_scores.size == 0):
        print("bioverify-admin: no report: need mated and non-mated probes", file=sys.stderr)
    elif args.report:
        from bioverify_admin.report_html import write_identification_report

        write_identification_report(
            args.report,
            title=f"Face identification (open-set 1:N): {args.images.name}",
            mated_scores=evaluation.mated_scores,
            mated_hits=evaluation.mated_hits,
            nonmated_scores=evaluation.nonmated_scores,
            threshold=evaluation.threshold,
            summary=result,
            mated_failed=evaluation.mated_failed,
            nonmated_failed=evaluation.nonmated_failed,
        )
        print(f"report written to {args.report}", file=sys.stderr)
    _print_result(args, result)
    return EXIT_OK


def _print_result(args: argparse.Namespace, result: dict[str, Any]) -> None:
    if args.json:
        print(_dump(result))
        return
    for key, value in _nan_to_none(result).items():
        shown = json.dumps(value, default=_json_default) if isinstance(value, dict) else value
        print(f"{key:<20} {shown}")


def _run_pad_eval(
    args: argparse.Namespace,
    run: Callable[[BioverifyClient], PadEvaluation],
    *,
    title: str,
    voice: bool,
    unavailable: Callable[[BioverifyClientError], str],
    samples: Sequence[PadSample],
) -> int:
    """Shared by ``eval face-pad`` and ``eval voice-spoof``: run against the service, write the
    optional report, print the summary (warning on stderr when the samples include some the
    service's pack was fitted on); ``unavailable`` words the failure when the service cannot
    assess samples (no pack installed, ...)."""
    from bioverify_admin.eval_pad import PadUnavailable, in_sample_figures

    if _report_folder_missing(args):
        return EXIT_USAGE
    bona = sum(sample.bonafide for sample in samples)
    if args.report is not None and bona in (0, len(samples)):
        print(
            f"bioverify-admin: --report needs bona fide and attack samples; {args.labels} has "
            f"{bona} bona fide and {len(samples) - bona} attack sample(s)",
            file=sys.stderr,
        )
        return EXIT_USAGE
    try:
        with _service(args, args.server) as client:
            evaluation = run(client)
            role = "voice-antispoof" if voice else "face-liveness"
            evaluation.summary.update(in_sample_figures(evaluation.results, client, role))
    except PadUnavailable as exc:
        print(f"bioverify-admin: {unavailable(exc.error)}", file=sys.stderr)
        return EXIT_FAILED
    if args.report:
        from bioverify_admin.report_html import write_pad_evaluation_report

        write_pad_evaluation_report(args.report, title, evaluation, voice=voice)
        print(f"report written to {args.report}", file=sys.stderr)
    warning = evaluation.summary.get("in_sample_warning")
    if warning:
        print(f"bioverify-admin: warning: {warning}", file=sys.stderr)
    _print_result(args, evaluation.summary)
    return EXIT_OK


def cmd_eval_face_pad(args: argparse.Namespace) -> int:
    from bioverify_admin.datasets import read_face_pad_labels
    from bioverify_admin.eval_pad import run_face_pad

    samples = read_face_pad_labels(args.labels)

    def unavailable(error: BioverifyClientError) -> str:
        hint = ""
        if error.code.name == "UNIMPLEMENTED":
            hint = " (is a face-liveness pack installed? see `bioverify-admin models list`)"
        return f"face liveness unavailable: {error}{hint}"

    return _run_pad_eval(
        args,
        lambda client: run_face_pad(client, samples, workers=args.workers),
        title=f"Face presentation attacks: {args.labels.name}",
        voice=False,
        unavailable=unavailable,
        samples=samples,
    )


def cmd_eval_voice_spoof(args: argparse.Namespace) -> int:
    from bioverify_admin.datasets import read_voice_spoof_labels
    from bioverify_admin.eval_pad import run_voice_spoof

    samples = read_voice_spoof_labels(args.labels)

    def unavailable(error: BioverifyClientError) -> str:
        if error.code.name == "UNIMPLEMENTED":
            return (
                f"the service has no voice anti-spoofing pack ({error.message}). Run "
                "`bioverify-admin models build voice-antispoof` (with the service's --data-dir /"
                " BIOVERIFY_DATA_DIR), then restart the service."
            )
        return f"voice anti-spoofing unavailable: {error}"

    return _run_pad_eval(
        args,
        lambda client: run_voice_spoof(
            client, samples, workers=args.workers, telephony=args.telephony
        ),
        title=f"Voice spoofing: {args.labels.name}",
        voice=True,
        unavailable=unavailable,
        samples=samples,
    )


# -- enroll -----------------------------------------------------------------------------------
def cmd_enroll(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from bioverify_admin import bulk_enroll

    if _report_folder_missing(args):
        return EXIT_USAGE
    jobs = bulk_enroll.load_jobs(args.source)
    journal = None
    if not args.dry_run:
        path = args.journal or bulk_enroll.default_journal_path(
            args.source, args.server, args.tenant
        )
        journal = Journal(path, own_folder=args.journal is None)
    with serving(args, args.server, timeout=300.0) as client:
        limit = client.service_info().limits.max_images_per_enrollment or 10
        with tqdm(total=len(jobs), unit="subject", file=sys.stderr, disable=args.quiet) as bar:
            enroller = bulk_enroll.BulkEnroller(
                client,
                journal,
                tenant=args.tenant,
                dry_run=args.dry_run,
                force=args.force,
                max_per_request=limit,
                concurrency=args.concurrency,
                progress=bar.update,
            )
            report = enroller.run(jobs)
    if args.report:
        write_private_text(args.report, _dump(report.to_dict()) + "\n")
    print(bulk_enroll.format_table(report))
    return _enroll_exit_status(report)


def _enroll_exit_status(report: RunReport) -> int:
    """1: a subject failed (service error) or a file could not be read, and a re-run retries
    them; 3: there was something to enroll and the service accepted none of it."""
    if report.failed_jobs or report.unreadable:
        print(
            f"bioverify-admin: {len(report.failed_jobs)} subject(s) failed and "
            f"{len(report.unreadable)} file(s) could not be read; a re-run retries them",
            file=sys.stderr,
        )
        return EXIT_FAILED
    if report.nothing_accepted():
        print("bioverify-admin: no sample was accepted", file=sys.stderr)
        return EXIT_NOTHING_ACCEPTED
    return EXIT_OK


# -- subjects -----------------------------------------------------------------------------------
def cmd_subjects_list(args: argparse.Namespace) -> int:
    """Every subject's id; with ``--legacy`` only those stored under an id this version would
    not store as it is (enrolled by a version before NFC ids: NFD, or a separator other than
    U+0020), each written with escapes (JSON) and why, since on a terminal it looks like
    another id."""
    with serving(args, args.server) as client:
        subjects = list(client.iter_subjects(tenant=args.tenant))
    if args.legacy:
        legacy = [(s, legacy_subject_id_problem(s.subject_id)) for s in subjects]
        if args.json:
            print(_dump([{**_subject_dict(s), "legacy_id": why} for s, why in legacy if why]))
        else:
            for s, why in legacy:
                if why:
                    print(f"{json.dumps(s.subject_id)}\t{why}")
    elif args.json:
        print(_dump([_subject_dict(s) for s in subjects]))
    else:
        for s in subjects:
            print(s.subject_id)
    return EXIT_OK


def cmd_subjects_show(args: argparse.Namespace) -> int:
    with serving(args, args.server) as client:
        subject = client.get_subject(args.subject_id, tenant=args.tenant)
    print(_dump(_subject_dict(subject)))
    return EXIT_OK


def cmd_subjects_export(args: argparse.Namespace) -> int:
    """Every subject's metadata as JSON Lines (no embeddings, images or audio: the API has
    none to give). With ``--out`` the file appears only once the export is complete."""
    if args.out is not None and not args.out.parent.is_dir():
        print(f"bioverify-admin: no folder {args.out.parent} for the export", file=sys.stderr)
        return EXIT_USAGE
    lines: list[str] = []
    unreadable = 0
    with serving(args, args.server) as client:
        for subject in client.iter_subjects(tenant=args.tenant):
            lines.append(json.dumps(_nan_to_none(_subject_dict(subject)), sort_keys=True))
            unreadable += bool(subject.metadata_unreadable)
    text = "".join(line + "\n" for line in lines)
    if args.out is None:
        sys.stdout.write(text)
    else:
        write_private_text(args.out, text)  # written aside and renamed: complete or absent
    where = f" to {args.out}" if args.out else ""
    print(f"exported {len(lines)} subject(s){where}", file=sys.stderr)
    if unreadable:
        print(
            f"{unreadable} subject(s) exported without their metadata, which the service "
            "could not open (see metadata_unreadable): delete them and enroll them again",
            file=sys.stderr,
        )
    return EXIT_OK


def cmd_subjects_delete(args: argparse.Namespace) -> int:
    """Erase the subject on the service, then its lines in the enrolment journals (``--journal``
    files or folders; by default ``.bioverify-enroll`` here, when there is one), which would
    otherwise keep its samples' fingerprints. A subject the service no longer has
    (NOT_FOUND) is still taken out of the journals."""
    from bioverify_admin.journal import DEFAULT_FOLDER, drop_subject, journal_files

    for path in args.journal or ():
        if not path.exists():
            raise UsageError(f"--journal: no file or folder {path}")
    folders = args.journal or ([DEFAULT_FOLDER] if DEFAULT_FOLDER.is_dir() else [])
    not_found = None
    with serving(args, args.server) as client:
        try:
            reply = client.delete_subject(args.subject_id, tenant=args.tenant)
        except BioverifyClientError as exc:
            if exc.code.name != "NOT_FOUND":
                raise
            not_found = exc
    journals = [path for folder in folders for path in journal_files(folder)]
    dropped = sum(drop_subject(path, args.tenant, args.subject_id) for path in journals)
    if journals:
        print(
            f"dropped {dropped} journal line(s) of {args.subject_id} from "
            f"{len(journals)} enrolment journal(s)",
            file=sys.stderr,
        )
    if not_found is not None:
        raise not_found
    print(f"deleted {reply.subject_id}: {reply.templates_deleted} template(s) erased")
    return EXIT_OK


def _subject_dict(subject: Any) -> dict[str, Any]:
    templates = [
        {
            "modality": {1: "face", 2: "voice"}.get(t.modality, "unknown"),
            "model": t.model,
            "sample_count": t.sample_count,
            "created_at": t.created_at,
            "updated_at": t.updated_at,
        }
        for t in subject.templates
    ]
    out = {
        "subject_id": subject.subject_id,
        "tenant": subject.tenant,
        "metadata": dict(subject.metadata),
        "modalities": sorted({str(t["modality"]) for t in templates}),
        "templates": templates,
        "created_at": subject.created_at,
        "updated_at": subject.updated_at,
    }
    if subject.metadata_unreadable:  # a listing's subject whose metadata could not be opened
        out["metadata_unreadable"] = subject.metadata_unreadable
    return out


# -- parser -------------------------------------------------------------------------------------
MIN_TOKEN_LENGTH = 16


def cmd_token_digest(args: argparse.Namespace) -> int:
    from bioverify.server.auth import tokens_file_line

    token = _read_token() if args.token_value in (None, "-") else args.token_value
    if not token:
        raise UsageError("the token is empty")
    if len(token) < MIN_TOKEN_LENGTH:
        # The file keeps an unsalted SHA-256: a short token is found from it by trying them.
        raise UsageError(
            f"a token of {len(token)} characters can be guessed from its digest; use at least "
            f"{MIN_TOKEN_LENGTH} random characters (e.g. `openssl rand -hex 32`)"
        )
    try:
        print(tokens_file_line(token, args.tenants))
    except ConfigurationError as exc:
        raise UsageError(f"--tenants: {exc.message}") from exc
    return EXIT_OK


def _read_token() -> str:
    """The secret token from standard input, so that it shows neither in the process list nor
    in the shell's history: typed at a prompt without echo on a terminal, else everything
    piped in, less one trailing newline."""
    if sys.stdin.isatty():
        import getpass

        return getpass.getpass("token (not echoed): ")
    text = sys.stdin.read()
    for newline in ("\r\n", "\n"):
        if text.endswith(newline):
            return text[: -len(newline)]
    return text


def _connection_options(parser: argparse.ArgumentParser, default: Any) -> None:
    parser.add_argument("--tls-ca", type=Path, default=default, help="PEM CA bundle: use TLS")
    parser.add_argument(
        "--tls-cert", type=Path, default=default, help="PEM client certificate (mutual TLS)"
    )
    parser.add_argument("--tls-key", type=Path, default=default, help="PEM client key (mutual TLS)")
    parser.add_argument("--token", default=default, help="API token (default: BIOVERIFY_TOKEN)")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of at least 1")
    return value


def _tenant(text: str) -> str:
    """A ``--tenant`` the service accepts, checked by the service's own rule before anything
    is sent: a bad one would otherwise fail every request alike. Passed on as given (the
    journals' default paths are made from it)."""
    try:
        validate_tenant(text)
    except InvalidInput as exc:
        raise argparse.ArgumentTypeError(f"{text!r}: {exc.message}") from exc
    return text


def _share(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a share between 0 and 1")
    return value


def _fmr_list(text: str) -> list[float]:
    """``1e-3,1e-2``: false-match rates strictly between 0 and 1, the first the default."""
    values = []
    for part in text.split(","):
        try:
            value = float(part)
        except ValueError:
            value = math.nan
        if not 0.0 < value < 1.0:
            raise argparse.ArgumentTypeError(
                f"{part.strip()!r} is not a false-match rate between 0 and 1 (e.g. 1e-3)"
            )
        values.append(value)
    return values


def _local_dirs(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model-dir", type=Path, help="model files, as for `bioverify serve` (BIOVERIFY_MODEL_DIR)"
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        help="the service's data directory, whose packs/ holds imported and built packs "
        "(BIOVERIFY_DATA_DIR)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bioverify-admin", description=__doc__)
    parser.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="log progress to stderr (and show the traceback of an unexpected error)",
    )
    _connection_options(parser, None)
    # The same options after the command: SUPPRESS keeps a value given before it.
    connection = argparse.ArgumentParser(add_help=False)
    _connection_options(connection, argparse.SUPPRESS)
    sub = parser.add_subparsers(dest="command", required=True)

    def add(
        group: Any,
        name: str,
        fn: Callable[[argparse.Namespace], int],
        help_text: str,
        *,
        service: bool = False,
    ) -> argparse.ArgumentParser:
        """A command; ``service``: it may talk to a service, so it takes the TLS/token options."""
        p: argparse.ArgumentParser = group.add_parser(
            name, help=help_text, parents=[connection] if service else []
        )
        p.set_defaults(func=fn)
        return p

    models = sub.add_parser("models", help="model packs on this machine").add_subparsers(
        dest="models_command", required=True
    )
    p = add(models, "list", cmd_models_list, "list known model packs")
    _local_dirs(p)
    p.add_argument("--json", action="store_true")
    p = add(models, "verify", cmd_models_verify, "check files and sha256 of packs")
    p.add_argument("pack", nargs="?")
    _local_dirs(p)
    p.add_argument("--json", action="store_true")
    p = add(models, "import", cmd_models_import, "import a pack directory into DATA_DIR/packs")
    p.add_argument("directory", type=Path)
    p.add_argument(
        "--data-dir",
        type=Path,
        help="the service's data directory: the pack goes to DIR/packs "
        "(default BIOVERIFY_DATA_DIR)",
    )
    p = add(models, "pull", cmd_models_pull, "download a pack's files (needs internet)")
    p.add_argument("pack")
    p.add_argument("--to", type=Path, help="model directory (default BIOVERIFY_MODEL_DIR)")
    p = add(models, "build", cmd_models_build, "build a pack from a checkpoint (needs torch)")
    p.add_argument("pack", choices=["voice-antispoof"])
    _local_dirs(p)  # checkpoints are read from the model dir; the pack goes to DATA_DIR/packs
    p.add_argument("--json", action="store_true")

    p = add(
        sub, "calibrate", cmd_calibrate, "fit calibration and thresholds into a pack", service=True
    )
    p.add_argument("modality", choices=["face", "voice"])
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument(
        "--images",
        "--utterances",
        dest="images",
        type=Path,
        help="TSV of labelled samples: face `path, identity`; voice `path, speaker_id` "
        "(every pair is used)",
    )
    src.add_argument(
        "--pairs",
        "--trials",
        dest="pairs",
        type=Path,
        help="TSV of pairs: face `path_a, path_b, same`; voice `enroll_path, test_path, target`",
    )
    p.add_argument("--pack", help="pack id (default: BIOVERIFY_FACE_PACK / auto)")
    p.add_argument(
        "--telephony",
        action="store_true",
        help="voice: pass every clip through 8 kHz G.711 mu-law first and fit the pack's "
        "narrowband (telephone) calibration, used for 8 kHz / G.711 input",
    )
    p.add_argument(
        "--server",
        help="HOST:PORT of a running service: score --pairs through it (the pack it serves is "
        "calibrated; --write writes into that pack's manifest on this machine)",
    )
    p.add_argument(
        "--target-fmr",
        type=_fmr_list,
        default="1e-3,1e-2,1e-4",
        help="comma-separated; first = default",
    )
    p.add_argument("--default", help="default operating point name (default: first target)")
    p.add_argument("--write", action="store_true", help="write the result into the manifest")
    p.add_argument("--json", action="store_true")

    evaluation = sub.add_parser("eval", help="evaluate the service on labelled data")
    ev = evaluation.add_subparsers(dest="eval_command", required=True)
    p = add(
        ev,
        "face-pairs",
        cmd_eval_face_pairs,
        "face verification pairs via CompareFaces",
        service=True,
    )
    p.add_argument("pairs", type=Path, help="TSV: path_a, path_b, same (paths relative to it)")
    p.add_argument("--server", help="HOST:PORT of a running service (default: start one)")
    p.add_argument("--concurrency", type=_positive_int, default=1)
    p.add_argument("--json", action="store_true")
    p.add_argument("--report", type=Path, metavar="OUT.html", help=REPORT_HELP)

    p = add(
        ev, "face-identify", cmd_eval_face_identify, "open-set 1:N via IdentifyFace", service=True
    )
    p.add_argument("images", type=Path, help="TSV: path, identity (paths relative to it)")
    p.add_argument("--server", help="HOST:PORT of a running service (default: start one)")
    p.add_argument("--holdout-share", type=_share, default=0.2, help="share of identities kept out")
    p.add_argument("--json", action="store_true")
    p.add_argument("--report", type=Path, metavar="OUT.html", help=REPORT_HELP)

    p = add(
        ev,
        "speaker-trials",
        cmd_eval_speaker_trials,
        "speaker trials via CompareVoices",
        service=True,
    )
    p.add_argument("trials", type=Path, help="TSV: enroll_path, test_path, target")
    p.add_argument("--server", help="HOST:PORT of a running service (default: start one)")
    p.add_argument(
        "--telephony", action="store_true", help="send both clips as 8 kHz G.711 mu-law first"
    )
    p.add_argument("--concurrency", type=_positive_int, default=1)
    p.add_argument("--json", action="store_true")
    p.add_argument("--report", type=Path, metavar="OUT.html", help=REPORT_HELP)

    for name, fn, help_text, columns in (
        (
            "face-pad",
            cmd_eval_face_pad,
            "face presentation attacks via CheckLiveness(image)",
            "path, label (bonafide|print|replay|mask|deepfake)",
        ),
        (
            "voice-spoof",
            cmd_eval_voice_spoof,
            "voice spoofing / deepfakes via CheckLiveness(clip)",
            "path, label (bonafide|spoof), attack_id",
        ),
    ):
        p = add(ev, name, fn, help_text, service=True)
        p.add_argument("labels", type=Path, help=f"TSV: {columns} (paths relative to it)")
        p.add_argument("--server", help="HOST:PORT of a running service (default: start one)")
        p.add_argument(
            "--workers", type=_positive_int, default=1, help="requests in flight at once"
        )
        p.add_argument("--json", action="store_true")
        p.add_argument("--report", type=Path, metavar="OUT.html", help=REPORT_HELP)
        if name == "voice-spoof":
            p.add_argument(
                "--telephony",
                action="store_true",
                help="send every clip as 8 kHz G.711 mu-law, as a phone line carries it",
            )

    p = add(sub, "token-digest", cmd_token_digest, "print the line to put in the tokens file")
    p.add_argument(
        "token_value",
        metavar="TOKEN",
        nargs="?",
        help="'-' or left out (best): read the token from standard input, or ask for it without "
        "echo on a terminal; given here, the token shows in the process list and the shell's "
        "history",
    )
    p.add_argument(
        "--tenants",
        default="",
        help="the tenants the token may act on, separated by commas ('default': the default "
        "tenant), or '*' (default: every tenant)",
    )

    p = add(sub, "enroll", cmd_enroll, "bulk enrollment from a folder tree or a CSV", service=True)
    p.add_argument("source", type=Path, help="folder (one sub-folder per subject) or CSV")
    p.add_argument("--server", required=True, help="HOST:PORT of the service")
    p.add_argument("--tenant", type=_tenant, default="")
    p.add_argument("--dry-run", action="store_true", help="run the checks, enroll nothing")
    p.add_argument(
        "--force",
        action="store_true",
        help="send every file again, whatever the journal says (e.g. after subjects were "
        "deleted on the service); samples still enrolled are not added twice",
    )
    p.add_argument("--concurrency", type=_positive_int, default=4)
    p.add_argument("--report", type=Path, help="write a JSON report here")
    p.add_argument(
        "--journal", type=Path, help="progress journal (default under .bioverify-enroll/)"
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")

    subjects = sub.add_parser("subjects", help="enrolled subjects").add_subparsers(
        dest="subjects_command", required=True
    )
    for name, fn, needs_id in (
        ("list", cmd_subjects_list, False),
        ("show", cmd_subjects_show, True),
        ("delete", cmd_subjects_delete, True),
    ):
        p = add(subjects, name, fn, f"{name} subjects", service=True)
        if needs_id:
            p.add_argument("subject_id")
        p.add_argument("--server", required=True, help="HOST:PORT of the service")
        p.add_argument("--tenant", type=_tenant, default="")
        p.add_argument("--json", action="store_true")
        if name == "list":
            p.add_argument(
                "--legacy",
                action="store_true",
                help="only subjects stored under an id in another Unicode form than NFC or "
                "with a separator other than U+0020 (enrolled by a version before NFC ids), "
                "each escaped, with why",
            )
        if name == "delete":
            p.add_argument(
                "--journal",
                type=Path,
                action="append",
                help="an enrolment journal, or a folder of them, to take the subject out of "
                "(repeatable; default: .bioverify-enroll/ in the current folder, if any)",
            )
    p = add(
        subjects,
        "export",
        cmd_subjects_export,
        "every subject's metadata as JSON Lines",
        service=True,
    )
    p.add_argument("--server", required=True, help="HOST:PORT of the service")
    p.add_argument("--tenant", type=_tenant, default="")
    p.add_argument("--out", type=Path, help="write here instead of stdout")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s %(message)s",
        stream=sys.stderr,
    )
    try:
        result: int = args.func(args)
        sys.stdout.flush()  # a reader gone (`| head`) shows here, not at the interpreter's exit
        return result
    except BrokenPipeError:
        # Python's recipe (the signal module's "Note on SIGPIPE"): whoever read the output
        # (`| head`) has left, which is no error to report. Point stdout at /dev/null so that
        # the interpreter's last flush does not fail again, and exit 141 (128 + SIGPIPE), the
        # status a shell shows for a tool that the closed pipe ended, as `yes | head` does.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    except (DatasetError, UsageError) as exc:
        print(f"bioverify-admin: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (BioverifyError, ServerStartError, CommandFailed, JournalError) as exc:
        print(f"bioverify-admin: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except BioverifyClientError as exc:
        _last_resort(args, f"the service answered {exc}")
        return EXIT_FAILED
    except OSError as exc:  # a file that cannot be written, a full disk, ...
        _last_resort(args, _os_error(exc))
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("bioverify-admin: interrupted", file=sys.stderr)
        return 130


def _os_error(exc: OSError) -> str:
    if exc.filename is not None and exc.strerror:
        return f"{exc.filename}: {exc.strerror}"
    return str(exc) or type(exc).__name__


def _last_resort(args: argparse.Namespace, line: str) -> None:
    """One line for an error the command did not word itself; ``-v`` adds the traceback."""
    if args.verbose:
        traceback.print_exc(file=sys.stderr)
    print(f"bioverify-admin: {line}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
