"""Continuity of a burst of frames: every frame shows the same person, and how far it jumps.

PAD, motion and the active challenge each judge what a frame shows, not who is in it: an
attacker can perform a challenge with their own live face and splice in someone else's
frames, or inject a photo between the actions. Here each frame's face embedding is compared
with the burst's medoid (the frame most similar to all the others), so any mix of two
identities fails, whatever the order and whichever identity has more frames. The threshold
is the face pack's most permissive verification threshold: frames of one capture session
are far more alike than two photos of a person taken years apart, so a frame below it is
taken for another person.

The largest geometric jump between consecutive frames (face-box travel in face widths, and
the change of face size) is reported beside it, for reviewers; it does not decide, because
a client may send frames sampled far apart in time.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from bioverify.errors import InvalidInput
from bioverify.face.ports import DetectedFace
from bioverify.scoring import l2_normalize, shown_against

IDENTITY_CONTINUITY = "identity_continuity"
CAPTURE_MATCHES_SUBJECT = "capture_matches_subject"
IMAGES_MATCH_CAPTURE = "images_match_capture"
IDENTITY_CHANGED = "IDENTITY_CHANGED"


@dataclass(frozen=True)
class IdentityContinuity:
    """Similarity of each frame to the burst's reference (medoid) frame."""

    passed: bool
    reference: int
    lowest_similarity: float
    threshold: float
    different: tuple[int, ...]
    names: tuple[str, ...]

    def explanation(self) -> str:
        lowest, need = shown_against(self.lowest_similarity, self.threshold)
        if self.passed:
            return (
                f"all {len(self.names)} faces are the person of {self.names[self.reference]}: "
                f"lowest similarity {lowest} (need {need})"
            )
        shown = ", ".join(self.names[i] for i in self.different[:8])
        more = f" and {len(self.different) - 8} more" if len(self.different) > 8 else ""
        return (
            f"{shown}{more}: a different person from {self.names[self.reference]}, "
            f"similarity down to {lowest} (need {need})"
        )


def identity_continuity(
    embeddings: npt.ArrayLike,
    threshold: float,
    names: Sequence[str] = (),
    *,
    candidates: int | None = None,
) -> IdentityContinuity:
    """Whether all faces' embeddings (one row per face) are the reference face's person.

    The reference is the face, among the first ``candidates`` rows (default all), with the
    largest summed cosine similarity to the others (the first on ties); a face is a
    different person when its similarity to it is below ``threshold``. Rows after the
    candidates are only tested (a verified image must not become the reference: a blend of
    two people would then bridge frames of both). ``names`` label the rows in the
    explanation (default "frame <i>").
    """
    vectors = np.asarray(embeddings, dtype=np.float64)
    if vectors.ndim != 2 or len(vectors) < 2:
        raise InvalidInput("identity continuity needs the embeddings of at least two frames")
    labels = tuple(names) or tuple(f"frame {i}" for i in range(len(vectors)))
    if len(labels) != len(vectors):
        raise ValueError(f"{len(labels)} names for {len(vectors)} embeddings")
    count = len(vectors) if candidates is None else candidates
    if not 1 <= count <= len(vectors):
        raise ValueError(f"{count} reference candidates among {len(vectors)} embeddings")
    if not np.all(np.isfinite(vectors)) or np.any(np.linalg.norm(vectors, axis=1) == 0):
        raise InvalidInput("a frame's face embedding is empty or not finite")
    unit = l2_normalize(vectors).astype(np.float64)
    similarity = unit @ unit.T
    reference = int(np.argmax(similarity[:count].sum(axis=1)))
    to_reference = np.delete(similarity[reference], reference)
    others = np.delete(np.arange(len(unit)), reference)
    different = tuple(int(i) for i in others[to_reference < threshold])
    return IdentityContinuity(
        passed=not different,
        reference=reference,
        lowest_similarity=float(to_reference.min()),
        threshold=float(threshold),
        different=different,
        names=labels,
    )


@dataclass(frozen=True)
class LargestJump:
    """The largest change of the face box between two consecutive frames."""

    travel: float
    """Displacement of the box centre, in face widths (of the earlier frame)."""
    scale: float
    """Ratio of the larger to the smaller box width (>= 1)."""
    travel_at: int
    scale_at: int

    def explanation(self) -> str:
        return (
            f"largest jump between consecutive frames: {self.travel:.2f} face widths "
            f"(into frame {self.travel_at}), size x{self.scale:.2f} (into frame {self.scale_at})"
        )


def largest_jump(faces: Sequence[DetectedFace]) -> LargestJump:
    """Largest face-box travel and size change between consecutive frames."""
    if len(faces) < 2:
        raise InvalidInput("frame jumps need at least two frames")
    boxes = np.array([(f.x1, f.y1, f.x2, f.y2) for f in faces], dtype=np.float64)
    widths = np.maximum(boxes[:, 2] - boxes[:, 0], 1e-6)
    centres = (boxes[:, :2] + boxes[:, 2:]) / 2.0
    travel = np.hypot(*(centres[1:] - centres[:-1]).T) / widths[:-1]
    ratio = widths[1:] / widths[:-1]
    scale = np.maximum(ratio, 1.0 / ratio)
    moved, resized = int(np.argmax(travel)), int(np.argmax(scale))
    return LargestJump(
        travel=float(travel[moved]),
        scale=float(scale[resized]),
        travel_at=moved + 1,
        scale_at=resized + 1,
    )
