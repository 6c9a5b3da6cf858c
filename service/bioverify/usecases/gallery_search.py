"""1:N search shared by face and voice: open-set identification and the duplicate-identity
check at enrollment. The gallery is derived state of the template store (bioverify.index)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from bioverify.errors import AlreadyExists, InvalidInput
from bioverify.index.gallery import Gallery
from bioverify.scoring import Calibration, OperatingPoint

DEFAULT_TOP_K = 5
MAX_TOP_K = 100


@dataclass(frozen=True)
class Candidate:
    subject_id: str
    similarity: float
    confidence: float
    rank: int


@dataclass(frozen=True)
class Duplicate:
    subject_id: str
    similarity: float
    confidence: float


@dataclass(frozen=True)
class IdentifyResult:
    """``expected_fpir``: the chance that someone not enrolled matches anybody in the searched
    gallery at this operating point (see :func:`expected_fpir`)."""

    candidates: tuple[Candidate, ...]
    threshold: float
    operating_point: str
    expected_fpir: float = float("nan")

    @property
    def found(self) -> bool:
        return bool(self.candidates) and self.candidates[0].similarity >= self.threshold


def expected_fpir(target_fmr: float, gallery_size: int) -> float:
    """False-positive identification rate of an open-set search of ``gallery_size`` subjects
    at a per-comparison false-match rate ``target_fmr``: ``1 - (1 - FMR) ** N``."""
    return 1.0 - (1.0 - target_fmr) ** max(0, gallery_size)


def identification_point(
    points: Sequence[OperatingPoint], gallery_size: int, target_fpir: float
) -> OperatingPoint:
    """The operating point for a 1:N search of ``gallery_size`` subjects: the loosest one whose
    false-positive identification rate stays within ``target_fpir``, else the strictest.

    A probe of someone not enrolled is compared with every subject, so its chance of a false
    hit grows with the gallery (:func:`expected_fpir`, about N x FMR): a threshold fit for 1:1
    verification lets impostors in once the gallery grows (at FMR 1e-3, about 1 in 25 unknown
    people matches someone in a gallery of 44). Past the strictest point's reach (100 subjects
    for FMR 1e-4 and a 1 % target) the target cannot be kept; the search result reports the
    rate it does have."""
    if not points:
        raise ValueError("no operating points")
    by_strictness = sorted(points, key=lambda p: p.target_fmr, reverse=True)  # loosest first
    n = max(1, gallery_size)
    for point in by_strictness:
        if expected_fpir(point.target_fmr, n) <= target_fpir * (1 + 1e-9):  # float slack
            return point
    return by_strictness[-1]


def search_point(
    default: OperatingPoint,
    points: Sequence[OperatingPoint],
    gallery_size: int,
    target_fpir: float,
) -> OperatingPoint:
    """The operating point of a search that did not name one: the service default, or the
    stricter one that keeps a gallery of ``gallery_size`` within ``target_fpir``."""
    scaled = identification_point(points, gallery_size, target_fpir)
    return scaled if scaled.target_fmr < default.target_fmr else default


def identify(
    gallery: Gallery,
    tenant: str,
    embedding: npt.NDArray[np.float32],
    *,
    top_k: int,
    min_confidence: float,
    calibration: Calibration,
    point: OperatingPoint,
    scale_among: Sequence[OperatingPoint] = (),
    target_fpir: float = 1.0,
) -> IdentifyResult:
    """Open-set search: the best ``top_k`` subjects that pass the operating point's threshold
    and, when the client sets ``min_confidence``, also those of the ``top_k`` at or above that
    confidence (e.g. to queue weaker hits for manual review; it never hides a hit that passes
    the operating point, which alone decides ``found``). An empty answer means nobody
    enrolled matches.
    ``scale_among``: when the client named no operating point, the pack's points; the search
    then moves from ``point`` to the one that keeps the tenant's gallery within
    ``target_fpir`` (:func:`search_point`)."""
    if top_k < 0 or top_k > MAX_TOP_K:
        raise InvalidInput(f"top_k must be between 1 and {MAX_TOP_K} (0 = {DEFAULT_TOP_K})")
    if not 0.0 <= min_confidence <= 1.0:
        raise InvalidInput("min_confidence must be between 0 and 1")
    gallery_size = gallery.size(tenant)
    if scale_among:
        point = search_point(point, scale_among, gallery_size, target_fpir)
    hits = gallery.search(tenant, embedding, top_k or DEFAULT_TOP_K)
    candidates: list[Candidate] = []
    for subject_id, similarity in hits:
        confidence = float(calibration.probability(similarity))
        passes = similarity >= point.threshold
        if not (passes or (min_confidence > 0 and confidence >= min_confidence)):
            continue
        candidates.append(Candidate(subject_id, similarity, confidence, len(candidates) + 1))
    fpir = expected_fpir(point.target_fmr, gallery_size)
    return IdentifyResult(tuple(candidates), point.threshold, point.name, fpir)


def find_duplicates(
    gallery: Gallery,
    tenant: str,
    subject_id: str,
    embeddings: npt.NDArray[np.float32],
    *,
    calibration: Calibration,
    point: OperatingPoint,
    refuse: bool,
) -> tuple[Duplicate, ...]:
    """Other subjects whose template matches any of the new samples (rows of ``embeddings``)
    above the threshold. With ``refuse`` a match raises AlreadyExists (the enrollment is not
    written)."""
    best: dict[str, float] = {}
    hits = gallery.search_many(tenant, embeddings, 5)
    for other, similarity in (hit for row in hits for hit in row):
        if other != subject_id and similarity >= point.threshold:
            best[other] = max(best.get(other, -1.0), similarity)
    duplicates = tuple(
        Duplicate(other, sim, float(calibration.probability(sim)))
        for other, sim in sorted(best.items(), key=lambda kv: -kv[1])
    )
    if refuse and duplicates:
        names = ", ".join(repr(d.subject_id) for d in duplicates[:3])
        raise AlreadyExists(
            f"the samples match already enrolled subject(s) {names} at {point.name}; "
            "enrollment refused (duplicate_action=DUPLICATE_REFUSE)"
        )
    return duplicates
