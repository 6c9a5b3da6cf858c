"""``eval face-identify``: open-set 1:N evaluation through EnrollFace and IdentifyFace.

Protocol: identities are sorted; a fixed share of them (every ``1/holdout_share``-th by a
stable hash of the name) is kept out as open-set impostors. Every other identity with at least
two images has its first image enrolled and its remaining images used as mated probes. Images of
kept-out identities, and of identities with a single image, are non-mated probes. Everything is
enrolled under a throwaway tenant that is erased at the end.
"""

from __future__ import annotations

import contextlib
import hashlib
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from bioverify import metrics
from bioverify.client import BioverifyClient, BioverifyClientError
from bioverify_admin.datasets import LabelledImage
from bioverify_admin.sample_errors import is_sample_error

TOP_K = 10
ALL_CANDIDATES = 1e-9  # min_confidence that returns every top-k hit, passing or not


def is_held_out(identity: str, share: float) -> bool:
    bucket = int(hashlib.sha256(identity.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
    return bucket < share


@dataclass(frozen=True, eq=False)
class IdentificationEvaluation:
    """A summary and the per-probe top scores it was computed from (for plots and reports)."""

    summary: dict[str, Any]
    mated_scores: npt.NDArray[np.float64]  # top-candidate similarity of each mated probe
    mated_hits: npt.NDArray[np.bool_]  # whether that top candidate was the right identity
    nonmated_scores: npt.NDArray[np.float64]
    threshold: float
    mated_failed: npt.NDArray[np.bool_]  # the service answered with an error: score is -1
    nonmated_failed: npt.NDArray[np.bool_]


def run_face_identification(
    client: BioverifyClient, images: list[LabelledImage], *, holdout_share: float = 0.2
) -> IdentificationEvaluation:
    by_identity: dict[str, list[LabelledImage]] = defaultdict(list)
    for image in images:
        by_identity[image.identity].append(image)
    tenant = f"eval-{uuid.uuid4().hex[:12]}"
    enrolled: set[str] = set()
    mated: list[LabelledImage] = []
    nonmated: list[LabelledImage] = []
    failed_enroll = 0
    try:
        for identity in sorted(by_identity):
            group = by_identity[identity]
            if len(group) < 2 or is_held_out(identity, holdout_share):
                nonmated.extend(group)
                continue
            try:
                reply = client.enroll_face(identity, [group[0].path.read_bytes()], tenant=tenant)
            except OSError:
                reply = None  # an unreadable image
            except BioverifyClientError as exc:
                if not is_sample_error(exc):
                    raise  # e.g. a wrong token: every enrolment would fail alike
                reply = None
            if reply is None or reply.accepted_count == 0:
                failed_enroll += 1
                nonmated.extend(group[1:])  # nobody enrolled for them: they are non-mated now
                continue
            enrolled.add(identity)
            mated.extend(group[1:])
        return _probe(client, tenant, mated, nonmated, enrolled, failed_enroll)
    finally:
        for identity in enrolled:
            with contextlib.suppress(BioverifyClientError):
                client.delete_subject(identity, tenant=tenant)


def _top(
    client: BioverifyClient,
    tenant: str,
    image: LabelledImage,
    points: set[tuple[str, float, float]],
) -> tuple[str | None, float, float, bool]:
    """(top subject, its similarity, latency ms, failed); adds the (operating point,
    threshold, expected FPIR) the service judged the search at to ``points``. A probe the
    service cannot use (no face, corrupt, too large) or that cannot be read has failed; any
    other error (a wrong API token, the service gone) is raised."""
    try:
        data = image.path.read_bytes()
    except OSError:
        return None, -1.0, 0.0, True
    started = time.perf_counter()
    try:
        reply = client.identify_face(
            data, tenant=tenant, top_k=TOP_K, min_confidence=ALL_CANDIDATES
        )
    except BioverifyClientError as exc:
        if not is_sample_error(exc):
            raise
        return None, -1.0, (time.perf_counter() - started) * 1e3, True
    latency = (time.perf_counter() - started) * 1e3
    if reply.operating_point:
        fpir = reply.expected_fpir if reply.HasField("expected_fpir") else float("nan")
        points.add((reply.operating_point, reply.threshold, fpir))
    if not reply.candidates:
        return None, -1.0, latency, False
    best = reply.candidates[0]
    return best.subject_id, best.similarity, latency, False


def _probe(
    client: BioverifyClient,
    tenant: str,
    mated: list[LabelledImage],
    nonmated: list[LabelledImage],
    enrolled: set[str],
    failed_enroll: int,
) -> IdentificationEvaluation:
    latencies: list[float] = []
    points: set[tuple[str, float, float]] = set()
    failed = 0
    mated_scores, mated_hits, mated_failed = [], [], []
    for image in mated:
        subject, score, latency, fail = _top(client, tenant, image, points)
        failed += fail
        latencies.append(latency)
        mated_scores.append(score)
        mated_hits.append(subject == image.identity)
        mated_failed.append(fail)
    nonmated_scores, nonmated_failed = [], []
    for image in nonmated:
        subject, score, latency, fail = _top(client, tenant, image, points)
        failed += fail
        latencies.append(latency)
        nonmated_scores.append(score)
        nonmated_failed.append(fail)
    if points:  # what the service judged the searches at (one point for one gallery size)
        point, threshold, fpir = max(points, key=lambda p: p[1])
    else:  # a service that does not say: its default operating point
        info = client.service_info()
        face = next(m for m in info.models if m.role == "face-matcher")
        point, threshold = next(
            (p.name, p.threshold) for p in face.operating_points if p.is_default
        )
        fpir = float("nan")
    hits = np.array(mated_hits, dtype=bool)
    mscores = np.array(mated_scores, dtype=np.float64)
    nscores = np.array(nonmated_scores, dtype=np.float64)
    summary = {
        "n_enrolled": len(enrolled),
        "n_probes": len(mated) + len(nonmated),
        "n_mated_probes": len(mated),
        "n_nonmated_probes": len(nonmated),
        "n_failed": failed,
        "n_failed_enrollments": failed_enroll,
        "rank1": float(hits.mean()) if hits.size else float("nan"),
        "fnir_at_fpir_1e-2": metrics.fnir_at_fpir(mscores, hits, nscores, 1e-2)
        if hits.size and nscores.size
        else float("nan"),
        "fnir_at_fpir_1e-1": metrics.fnir_at_fpir(mscores, hits, nscores, 1e-1)
        if hits.size and nscores.size
        else float("nan"),
        "operating_point": point,
        "threshold": threshold,
        "expected_fpir": fpir,
        "fnir_at_threshold": float(1.0 - np.mean(hits & (mscores >= threshold)))
        if hits.size
        else float("nan"),
        "fpir_at_threshold": float(np.mean(nscores >= threshold)) if nscores.size else float("nan"),
        "mean_latency_ms": float(np.mean(latencies)) if latencies else float("nan"),
    }
    return IdentificationEvaluation(
        summary,
        mscores,
        hits,
        nscores,
        threshold,
        np.array(mated_failed, dtype=bool),
        np.array(nonmated_failed, dtype=bool),
    )
