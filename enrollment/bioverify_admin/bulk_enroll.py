"""Bulk enrollment over gRPC from a folder tree (one folder per subject) or a CSV
(``subject_id, modality, path``), concurrent, resumable and idempotent.

A journal (:mod:`bioverify_admin.journal`: append-only JSON lines, fsynced after every
request) records each sample file by a keyed fingerprint of its bytes once the service has
answered for it; a re-run sends only what the journal does not hold, so nothing is enrolled
twice and an interrupted run picks up where it stopped. The journal knows only what this tool
sent: ``force`` sends everything again (after subjects were deleted on the service, say); the
service adds the same bytes to a template only once. Files that cannot be read are reported
apart (never sent, never journalled).
"""

from __future__ import annotations

import hashlib
import threading
import unicodedata
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bioverify.client import BioverifyClient, BioverifyClientError
from bioverify.usecases.common import DEFAULT_TENANT, validate_tenant
from bioverify_admin.datasets import DatasetError, read_rows
from bioverify_admin.journal import DEFAULT_FOLDER, Entry, Journal

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp"}
AUDIO_SUFFIXES = {".wav", ".flac", ".ogg", ".mp3"}
MODALITIES = ("face", "voice")


@dataclass(frozen=True)
class SampleFile:
    path: Path
    fingerprint: str  # the journal's keyed fingerprint ("" without a journal)
    data: bytes  # read once: fingerprinted for the journal, then sent


@dataclass(frozen=True)
class EnrollJob:
    subject_id: str
    modality: str
    files: tuple[Path, ...]


@dataclass(frozen=True)
class SampleResult:
    subject_id: str
    modality: str
    path: str
    fingerprint: str  # for the journal only: never in the report
    accepted: bool
    reasons: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "subject_id": self.subject_id,
            "modality": self.modality,
            "path": self.path,
            "accepted": self.accepted,
            "reasons": list(self.reasons),
        }


@dataclass
class JobOutcome:
    """One subject's files: the service's answers, those the journal had, those unreadable."""

    results: list[SampleResult] = field(default_factory=list)
    skipped: int = 0
    duplicates: list[dict[str, Any]] = field(default_factory=list)
    unreadable: list[dict[str, str]] = field(default_factory=list)


@dataclass
class RunReport:
    samples: list[SampleResult] = field(default_factory=list)  # sent, with the service's answer
    skipped: int = 0
    failed_jobs: list[dict[str, str]] = field(default_factory=list)
    duplicates: list[dict[str, Any]] = field(default_factory=list)
    unreadable: list[dict[str, str]] = field(default_factory=list)  # not sent

    @property
    def accepted(self) -> int:
        return sum(1 for s in self.samples if s.accepted)

    def summary(self) -> dict[str, Any]:
        accepted = self.accepted
        return {
            "samples_sent": len(self.samples),
            "accepted": accepted,
            "rejected": len(self.samples) - accepted,
            "failed_to_read": len(self.unreadable),
            "skipped_already_done": self.skipped,
            "failed_subjects": len(self.failed_jobs),
            "duplicate_warnings": len(self.duplicates),
        }

    def nothing_accepted(self) -> bool:
        """Nothing enrolled although there was something to enroll: samples were sent and all
        rejected, or every file was unreadable, or the source held no sample at all (a run
        whose samples the journal already holds is not this)."""
        if self.accepted:
            return False
        return bool(self.samples or self.unreadable) or self.skipped == 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "summary": self.summary(),
            "samples": [s.to_dict() for s in self.samples],
            "unreadable": self.unreadable,
            "failed": self.failed_jobs,
            "duplicates": self.duplicates,
        }


def modality_of(path: Path) -> str | None:
    suffix = path.suffix.lower()
    if suffix in IMAGE_SUFFIXES:
        return "face"
    if suffix in AUDIO_SUFFIXES:
        return "voice"
    return None


def subject_id_of(name: str) -> str:
    """A folder name or CSV value as the subject id the service stores: Unicode normal form C
    (macOS file systems hand out names in NFD, "e" and a combining accent for "é")."""
    return unicodedata.normalize("NFC", name)


def jobs_from_tree(root: Path) -> list[EnrollJob]:
    """One sub-folder per subject (its name, in normal form C, is the subject id); images
    enroll the face, audio files the voice. Other files are ignored. Folders whose names differ
    only in normal form are one subject."""
    grouped: dict[tuple[str, str], list[Path]] = {}
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        for path in sorted(folder.rglob("*")):
            modality = modality_of(path)
            if modality and path.is_file():
                grouped.setdefault((subject_id_of(folder.name), modality), []).append(path)
    return [EnrollJob(s, m, tuple(files)) for (s, m), files in sorted(grouped.items())]


def jobs_from_csv(path: Path) -> list[EnrollJob]:
    """Rows ``subject_id, modality, path`` (paths relative to the CSV's folder; tab-separated
    for a ``.tsv`` file)."""
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    grouped: dict[tuple[str, str], list[Path]] = {}
    for line, row in read_rows(path, ("subject_id", "modality", "path"), delimiter=delimiter):
        modality = row["modality"].strip().lower()
        if modality not in MODALITIES:
            raise DatasetError(f"{path}:{line}: modality must be face or voice")
        key = (subject_id_of(row["subject_id"]), modality)
        grouped.setdefault(key, []).append(path.parent / row["path"].strip())
    return [EnrollJob(s, m, tuple(files)) for (s, m), files in grouped.items()]


def load_jobs(source: Path) -> list[EnrollJob]:
    if not source.exists():
        raise DatasetError(f"{source}: no such file or folder")
    if source.is_dir():
        return jobs_from_tree(source)
    if source.suffix.lower() in (".csv", ".tsv", ".txt"):
        return jobs_from_csv(source)
    raise DatasetError(f"{source}: give a folder (one sub-folder per subject) or a CSV file")


def default_journal_path(source: Path, server: str, tenant: str) -> Path:
    """The journal of enrolling ``source`` into ``tenant`` on ``server``; the default tenant
    named or left out is one tenant, so a re-run either way finds the same journal."""
    if validate_tenant(tenant) == DEFAULT_TENANT:
        tenant = ""
    key = hashlib.sha256(f"{source.resolve()}|{server}|{tenant}".encode()).hexdigest()[:16]
    return DEFAULT_FOLDER / f"{key}.jsonl"


class BulkEnroller:
    def __init__(
        self,
        client: BioverifyClient,
        journal: Journal | None,
        *,
        tenant: str = "",
        dry_run: bool = False,
        force: bool = False,
        max_per_request: int = 10,
        concurrency: int = 4,
        progress: Callable[[int], None] | None = None,
    ) -> None:
        self.client = client
        self.journal = journal
        self.tenant = tenant
        self.dry_run = dry_run
        self.force = force  # send every file, whatever the journal holds
        self.max_per_request = max(1, max_per_request)
        self.concurrency = max(1, concurrency)
        self.progress = progress

    def run(self, jobs: list[EnrollJob]) -> RunReport:
        report = RunReport()
        lock = threading.Lock()
        with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
            futures = {pool.submit(self._job, job): job for job in jobs}
            for future in as_completed(futures):
                job = futures[future]
                try:
                    outcome = future.result()
                except BioverifyClientError as exc:
                    with lock:
                        report.failed_jobs.append(
                            {
                                "subject_id": job.subject_id,
                                "modality": job.modality,
                                "error": f"{exc.code.name}: {exc.message}",
                            }
                        )
                else:
                    with lock:
                        report.samples.extend(outcome.results)
                        report.skipped += outcome.skipped
                        report.duplicates.extend(outcome.duplicates)
                        report.unreadable.extend(outcome.unreadable)
                if self.progress:
                    self.progress(1)
        if self.journal and not self.dry_run:
            self.journal.finish()
        report.samples.sort(key=lambda s: (s.subject_id, s.modality, s.path))
        report.unreadable.sort(key=lambda u: (u["subject_id"], u["modality"], u["path"]))
        return report

    def _job(self, job: EnrollJob) -> JobOutcome:
        """Enroll one subject's files, at most ``max_per_request`` per request; each file is
        read once (fingerprinted for the journal, then sent) and only a batch is held in memory."""
        outcome = JobOutcome()
        batch: list[SampleFile] = []

        def send() -> None:
            batch_results, batch_dups, refused = self._send(job, batch)
            if self.journal and not self.dry_run and not refused:
                self.journal.record(
                    Entry(self.tenant, r.subject_id, r.modality, r.fingerprint, r.accepted)
                    for r in batch_results
                )
            outcome.results.extend(batch_results)
            outcome.duplicates.extend(batch_dups)
            batch.clear()

        for path in job.files:
            try:
                data = path.read_bytes()
            except OSError as exc:
                outcome.unreadable.append(
                    {
                        "subject_id": job.subject_id,
                        "modality": job.modality,
                        "path": str(path),
                        "error": exc.strerror or type(exc).__name__,
                    }
                )
                continue
            fingerprint = self.journal.fingerprint(data) if self.journal else ""
            if (
                self.journal
                and not self.force
                and self.journal.done(self.tenant, job.subject_id, job.modality, fingerprint, data)
            ):
                outcome.skipped += 1
                continue
            batch.append(SampleFile(path, fingerprint, data))
            if len(batch) == self.max_per_request:
                send()
        if batch:
            send()
        return outcome

    def _send(
        self, job: EnrollJob, batch: list[SampleFile]
    ) -> tuple[list[SampleResult], list[dict[str, Any]], bool]:
        """Per-sample results, duplicate warnings, and whether the service refused the whole
        enrollment although some samples were fine on their own (e.g. too little speech in
        total): then no sample counts as accepted and none is journalled, so a later run
        (with more clips) sends them again."""
        payloads = [f.data for f in batch]
        if job.modality == "face":
            reply: Any = self.client.enroll_face(
                job.subject_id, payloads, tenant=self.tenant, dry_run=self.dry_run
            )
        else:
            reply = self.client.enroll_voice(
                job.subject_id,
                [self.client.audio(p) for p in payloads],
                tenant=self.tenant,
                dry_run=self.dry_run,
            )
        refusal = tuple(f"{r.code}: {r.message}" for r in reply.reasons)
        results = []
        for sample in reply.samples:
            f = batch[sample.index]
            reasons = tuple(f"{r.code}: {r.message}" for r in sample.reasons) + refusal
            results.append(
                SampleResult(
                    job.subject_id,
                    job.modality,
                    str(f.path),
                    f.fingerprint,
                    sample.accepted and not refusal,
                    reasons,
                )
            )
        duplicates = [
            {
                "subject_id": job.subject_id,
                "modality": job.modality,
                "matches": d.subject_id,
                "confidence": d.confidence,
            }
            for d in reply.duplicates
        ]
        # Samples refused only as a whole (each fine on its own) are worth sending again later;
        # samples rejected on their own merits are answered for good.
        return results, duplicates, bool(refusal) and any(s.accepted for s in reply.samples)


def format_table(report: RunReport) -> str:
    per_subject: dict[tuple[str, str], list[int]] = {}
    for s in report.samples:
        counts = per_subject.setdefault((s.subject_id, s.modality), [0, 0])
        counts[0 if s.accepted else 1] += 1
    lines = [f"{'subject':<32} {'modality':<8} {'accepted':>8} {'rejected':>8}"]
    for (subject, modality), (acc, rej) in sorted(per_subject.items()):
        lines.append(f"{subject:<32} {modality:<8} {acc:>8} {rej:>8}")
    rejected = [s for s in report.samples if not s.accepted]
    if rejected:
        lines.append("\nrejected samples:")
        lines.extend(f"  {s.path}: {'; '.join(s.reasons)}" for s in rejected)
    if report.unreadable:
        lines.append("\nfailed to read (not sent):")
        lines.extend(f"  {u['path']}: {u['error']}" for u in report.unreadable)
    for f in report.failed_jobs:
        lines.append(f"FAILED {f['subject_id']} ({f['modality']}): {f['error']}")
    for d in report.duplicates:
        lines.append(
            f"DUPLICATE? {d['subject_id']} ({d['modality']}) matches {d['matches']} "
            f"(confidence {d['confidence']:.3f})"
        )
    summary = report.summary()
    lines.append("\n" + ", ".join(f"{k.replace('_', ' ')}: {v}" for k, v in summary.items()))
    return "\n".join(lines)
