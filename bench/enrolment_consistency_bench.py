"""Enrolment consistency (SUBJECT_MISMATCH): how often it refuses a genuine sample of the
subject, and how often it catches another person's sample slipped into an enrolment.

Protocol (reproducible, no randomness):

- samples are embedded by the service's own pipelines, in-process: the LFW images of
  face_images.tsv (60 people, 2-4 photos each) and the ``enroll_or_test`` clips of
  speaker_utterances.tsv (10 clips per speaker);
- the rule is ``usecases.common.mismatched_samples`` at the pack's loosest operating point,
  exactly what EnrollFace / EnrollVoice run;
- **new subject, genuine**: each person's samples in one enrolment (face: all photos; voice:
  the first 3 clips); refused samples are counted;
- **extension, genuine**: each person's template (the normalised mean of the first sample,
  face, or of the first 3 clips, voice) extended with each remaining sample in turn;
- **intruder in a new enrolment**: each person's genuine enrolment plus the first sample of
  every other person; caught when that sample is refused;
- **intruder extending a subject**: each person's template extended with the first sample of
  every other person; caught when it is refused.

LFW photos of one person span years, lighting and pose, so the face genuine refusal rate is a
pessimistic stand-in for enrolment photos taken for the purpose.

Prints a table and writes JSON to bench/results/enrolment_consistency_bench.json.

    python bench/enrolment_consistency_bench.py [--face-pack auto] [--voice-pack auto]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ["ORT_DISABLE_TELEMETRY"] = "1"

import numpy as np
import numpy.typing as npt

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("BIOVERIFY_SHARED_DIR", REPO.parent / "shared"))
DATA = SHARED / "data"

from bioverify.errors import BioverifyError  # noqa: E402
from bioverify.server.app import (  # noqa: E402
    audio_limits,
    build_face_pipeline,
    build_voice_pipeline,
    choose_face_pack,
    choose_voice_pack,
)
from bioverify.settings import Settings  # noqa: E402
from bioverify.usecases.common import mismatched_samples  # noqa: E402
from bioverify.voice.audio_decode import decode_audio  # noqa: E402
from bioverify_admin.datasets import (  # noqa: E402
    read_identity_images,
    read_speaker_utterances,
    read_tsv,
)

Vectors = npt.NDArray[np.float32]


def by_identity(items: list[tuple[str, Path]]) -> dict[str, list[Path]]:
    people: dict[str, list[Path]] = defaultdict(list)
    for identity, path in items:
        people[identity].append(path)
    return {k: sorted(v) for k, v in sorted(people.items())}


def embed_people(
    people: dict[str, list[Path]], embed: Callable[[bytes], Vectors]
) -> tuple[dict[str, Vectors], int]:
    out: dict[str, Vectors] = {}
    failed = 0
    for identity, paths in people.items():
        rows = []
        for path in paths:
            try:
                rows.append(embed(path.read_bytes()))
            except BioverifyError:  # no face, no speech: counted, not fatal
                failed += 1
        if rows:
            out[identity] = np.stack(rows)
    return out, failed


def template(vectors: Vectors) -> Vectors:
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    mean = unit.mean(axis=0)
    vector: Vectors = (mean / np.linalg.norm(mean)).astype(np.float32)
    return vector


def measure(people: dict[str, Vectors], enrol: int, threshold: float) -> dict[str, Any]:
    """``enrol``: samples in a new enrolment (and in the extended template); 0: all."""
    counts = dict.fromkeys(
        ("new_genuine", "new_refused", "ext_genuine", "ext_refused", "new_intruders",
         "new_caught", "ext_intruders", "ext_caught"),
        0,
    )  # fmt: skip
    firsts = {k: v[0] for k, v in people.items()}
    for identity, vectors in people.items():
        base = vectors if enrol == 0 else vectors[:enrol]
        if len(base) >= 2:
            counts["new_genuine"] += len(base)
            counts["new_refused"] += len(mismatched_samples(base, None, threshold))
        held = vectors[:1] if enrol == 0 else vectors[:enrol]
        rest = vectors[len(held) :]
        reference = template(held)
        for sample in rest:
            counts["ext_genuine"] += 1
            counts["ext_refused"] += len(mismatched_samples(sample[None], reference, threshold))
        for other, face in firsts.items():
            if other == identity:
                continue
            if len(base) >= 2:
                mixed = np.vstack([base, face[None]])
                counts["new_intruders"] += 1
                counts["new_caught"] += len(base) in mismatched_samples(mixed, None, threshold)
            counts["ext_intruders"] += 1
            counts["ext_caught"] += bool(mismatched_samples(face[None], reference, threshold))

    def rate(a: str, b: str) -> float | None:
        return counts[a] / counts[b] if counts[b] else None

    return {
        "identities": len(people),
        **counts,
        "new_genuine_refusal_rate": rate("new_refused", "new_genuine"),
        "extension_genuine_refusal_rate": rate("ext_refused", "ext_genuine"),
        "new_intruder_catch_rate": rate("new_caught", "new_intruders"),
        "extension_intruder_catch_rate": rate("ext_caught", "ext_intruders"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--face-pack", default="auto")
    parser.add_argument("--voice-pack", default="auto")
    parser.add_argument(
        "--out",
        type=Path,
        default=REPO / "bench" / "results" / "enrolment_consistency_bench.json",
    )
    args = parser.parse_args()
    settings = Settings(
        model_dir=SHARED / "models",
        data_dir=Path(tempfile.mkdtemp(prefix="bioverify-bench-")),
        face_pack=args.face_pack,
        voice_pack=args.voice_pack,
    )
    report: dict[str, Any] = {}

    face_pack = choose_face_pack(settings)
    faces = build_face_pipeline(settings, face_pack)
    people = by_identity(
        [(i.identity, i.path) for i in read_identity_images(DATA / "face_images.tsv")]
    )
    face_vectors, no_face = embed_people(
        people, lambda data: faces.embed([faces.prepare(data)])[0].embedding
    )
    threshold = face_pack.loosest_operating_point().threshold
    report["face"] = {
        "pack": face_pack.id,
        "threshold": threshold,
        "no_face": no_face,
        **measure(face_vectors, 0, threshold),
    }

    voice_pack = choose_voice_pack(settings)
    if voice_pack is not None:
        voices = build_voice_pipeline(settings, voice_pack)
        limits = audio_limits(settings)
        roles = {
            (DATA / r["path"]).resolve(): r["role"]
            for r in read_tsv(DATA / "speaker_utterances.tsv", ("path", "role"))
        }
        speakers = by_identity(
            [
                (u.identity, u.path)
                for u in read_speaker_utterances(DATA / "speaker_utterances.tsv")
                if roles.get(u.path.resolve()) == "enroll_or_test"
            ]
        )
        voice_vectors, no_speech = embed_people(
            speakers, lambda data: voices.analyse(decode_audio(data, limits=limits)).embedding
        )
        threshold = voice_pack.loosest_operating_point().threshold
        report["voice"] = {
            "pack": voice_pack.id,
            "threshold": threshold,
            "no_speech": no_speech,
            **measure(voice_vectors, 3, threshold),
        }

    print(
        f"{'modality':8} {'ids':>4} {'genuine refused: new':>21} {'extension':>10} "
        f"{'intruder caught: new':>21} {'extension':>10}"
    )
    for modality, r in report.items():
        print(
            f"{modality:8} {r['identities']:>4} "
            f"{r['new_refused']:>9}/{r['new_genuine']:<4} {r['new_genuine_refusal_rate']:>6.1%} "
            f"{r['ext_refused']:>3}/{r['ext_genuine']:<3} "
            f"{r['new_caught']:>9}/{r['new_intruders']:<5} {r['new_intruder_catch_rate']:>6.1%} "
            f"{r['ext_caught']:>4}/{r['ext_intruders']:<4}"
        )
        print(
            f"{'':8} pack {r['pack']}, threshold {r['threshold']:.3f}: extension refusal "
            f"{r['extension_genuine_refusal_rate']:.1%}, intruder catch "
            f"{r['extension_intruder_catch_rate']:.1%}"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
