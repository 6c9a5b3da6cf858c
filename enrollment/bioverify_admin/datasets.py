"""Reading evaluation/enrollment label files (tab-separated, one header line, paths relative to
the file's folder)."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from bioverify.metrics import PAD_BONAFIDE


class DatasetError(Exception):
    pass


def read_rows(
    path: Path, required: tuple[str, ...], *, delimiter: str = "\t"
) -> list[tuple[int, dict[str, str]]]:
    """``(line number, row)`` of each data row; ``DatasetError`` (one line, naming the file and
    the row) for a file that cannot be read or is not UTF-8 text, a missing column, or a row
    without a value for a required column."""
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle, delimiter=delimiter)
            missing = [c for c in required if c not in (reader.fieldnames or [])]
            if missing:
                raise DatasetError(f"{path}: missing column(s) {', '.join(missing)}")
            rows = []
            for row in reader:
                empty = [c for c in required if row.get(c) is None]
                if empty:
                    raise DatasetError(f"{path}:{reader.line_num}: no value for {', '.join(empty)}")
                rows.append((reader.line_num, {k: v for k, v in row.items() if k is not None}))
            return rows
    except OSError as exc:
        raise DatasetError(f"cannot read {path}: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise DatasetError(f"cannot read {path}: not UTF-8 text (byte {exc.start})") from exc
    except csv.Error as exc:
        raise DatasetError(f"cannot read {path}: {exc}") from exc


def read_tsv(path: Path, required: tuple[str, ...]) -> list[dict[str, str]]:
    return [row for _, row in read_rows(path, required)]


FALSE_LABELS, TRUE_LABELS = ("0", "false"), ("1", "true")


def parse_flag(path: Path, line: int, column: str, value: str) -> bool:
    """A same-person label: 1/true or 0/false (any case); anything else is refused."""
    text = value.strip().lower()
    if text in TRUE_LABELS:
        return True
    if text in FALSE_LABELS:
        return False
    raise DatasetError(f"{path}:{line}: {column} {value.strip()!r} is not 1/true or 0/false")


@dataclass(frozen=True)
class Pair:
    path_a: Path
    path_b: Path
    same: bool


def _pairs(path: Path, columns: tuple[str, str, str], what: tuple[str, str]) -> list[Pair]:
    a, b, label = columns
    base = path.parent
    pairs = [
        Pair(base / r[a], base / r[b], parse_flag(path, line, label, r[label]))
        for line, r in read_rows(path, columns)
    ]
    genuine = sum(p.same for p in pairs)
    if genuine == 0 or genuine == len(pairs):
        lacking = what[0] if genuine == 0 else what[1]
        raise DatasetError(
            f"{path}: no {lacking} ({label} = {'1' if genuine == 0 else '0'}): "
            "need both classes to measure error rates"
        )
    return pairs


def read_face_pairs(path: Path) -> list[Pair]:
    """``path_a, path_b, same`` rows (same: 1/true or 0/false); both classes must occur."""
    return _pairs(path, ("path_a", "path_b", "same"), ("same-person pairs", "impostor pairs"))


@dataclass(frozen=True)
class LabelledImage:
    path: Path
    identity: str


def read_identity_images(path: Path) -> list[LabelledImage]:
    rows = read_tsv(path, ("path", "identity"))
    return [LabelledImage(path.parent / r["path"], r["identity"]) for r in rows]


def read_speaker_trials(path: Path) -> list[Pair]:
    """``enroll_path, test_path, target`` rows as pairs (same = target: 1/true or 0/false);
    both classes must occur."""
    return _pairs(
        path, ("enroll_path", "test_path", "target"), ("target trials", "non-target trials")
    )


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
    rows = read_rows(path, ("path", "label"))
    allowed = (BONAFIDE, *FACE_ATTACK_CLASSES)
    out = []
    for n, r in rows:
        label = r["label"].strip().lower()
        if label not in allowed:
            raise DatasetError(
                f"{path}:{n}: label {r['label'].strip()!r} is not one of {', '.join(allowed)}"
            )
        out.append(PadSample(path.parent / r["path"], label, label))
    return out


def read_voice_spoof_labels(path: Path) -> list[PadSample]:
    """``path, label, attack_id`` rows, label ∈ {bonafide, spoof} (attack_id ``-`` if bona fide)."""
    rows = read_rows(path, ("path", "label", "attack_id"))
    out = []
    for n, r in rows:
        label = r["label"].strip().lower()
        if label not in (BONAFIDE, VOICE_SPOOF):
            raise DatasetError(f"{path}:{n}: label {r['label'].strip()!r} is not bonafide or spoof")
        attack = "" if label == BONAFIDE else (r["attack_id"] or "").strip() or "unknown"
        out.append(PadSample(path.parent / r["path"], label, attack))
    return out
