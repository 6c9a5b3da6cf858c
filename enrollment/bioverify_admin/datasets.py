"""Reading evaluation/enrollment label files (tab-separated, one header line, paths relative to
the file's folder)."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from bioverify.metrics import PAD_BONAFIDE


class DatasetError(Exception):
    pass


def read_tsv(path: Path, required: tuple[str, ...]) -> list[dict[str, str]]:
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle, delimiter="\t")
            missing = [c for c in required if c not in (reader.fieldnames or [])]
            if missing:
                raise DatasetError(f"{path}: missing column(s) {', '.join(missing)}")
            return [dict(row) for row in reader]
    except OSError as exc:
        raise DatasetError(f"cannot read {path}: {exc.strerror}") from exc


@dataclass(frozen=True)
class Pair:
    path_a: Path
    path_b: Path
    same: bool


def read_face_pairs(path: Path) -> list[Pair]:
    rows = read_tsv(path, ("path_a", "path_b", "same"))
    base = path.parent
    return [
        Pair(base / r["path_a"], base / r["path_b"], r["same"].strip() in ("1", "true", "True"))
        for r in rows
    ]


@dataclass(frozen=True)
class LabelledImage:
    path: Path
    identity: str


def read_identity_images(path: Path) -> list[LabelledImage]:
    rows = read_tsv(path, ("path", "identity"))
    return [LabelledImage(path.parent / r["path"], r["identity"]) for r in rows]


def read_speaker_trials(path: Path) -> list[Pair]:
    """``enroll_path, test_path, target`` rows as pairs (same = target)."""
    rows = read_tsv(path, ("enroll_path", "test_path", "target"))
    base = path.parent
    return [
        Pair(base / r["enroll_path"], base / r["test_path"], r["target"].strip() in ("1", "true"))
        for r in rows
    ]


def read_speaker_utterances(path: Path) -> list[LabelledImage]:
    """``path, speaker_id`` rows (the identity of each clip)."""
    rows = read_tsv(path, ("path", "speaker_id"))
    return [LabelledImage(path.parent / r["path"], r["speaker_id"]) for r in rows]


BONAFIDE = PAD_BONAFIDE
FACE_ATTACK_CLASSES = ("print", "replay", "mask", "deepfake")
VOICE_SPOOF = "spoof"


@dataclass(frozen=True)
class PadSample:
    """A labelled liveness sample: ``label`` is ``bonafide`` or the attack class (face) /
    ``spoof`` (voice); ``attack`` names the attack more finely (voice: the attack id)."""

    path: Path
    label: str
    attack: str = ""

    @property
    def bonafide(self) -> bool:
        return self.label == BONAFIDE


def read_face_pad_labels(path: Path) -> list[PadSample]:
    """``path, label`` rows, label ∈ {bonafide, print, replay, mask, deepfake}."""
    rows = read_tsv(path, ("path", "label"))
    allowed = (BONAFIDE, *FACE_ATTACK_CLASSES)
    out = []
    for n, r in enumerate(rows, start=2):
        label = r["label"].strip()
        if label not in allowed:
            raise DatasetError(f"{path}:{n}: label {label!r} is not one of {', '.join(allowed)}")
        out.append(PadSample(path.parent / r["path"], label, label))
    return out


def read_voice_spoof_labels(path: Path) -> list[PadSample]:
    """``path, label, attack_id`` rows, label ∈ {bonafide, spoof} (attack_id ``-`` if bona fide)."""
    rows = read_tsv(path, ("path", "label", "attack_id"))
    out = []
    for n, r in enumerate(rows, start=2):
        label = r["label"].strip()
        if label not in (BONAFIDE, VOICE_SPOOF):
            raise DatasetError(f"{path}:{n}: label {label!r} is not bonafide or spoof")
        attack = "" if label == BONAFIDE else (r["attack_id"] or "").strip() or "unknown"
        out.append(PadSample(path.parent / r["path"], label, attack))
    return out
