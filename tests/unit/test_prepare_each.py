"""prepare_each: a rejected enrolment sample keeps its error, not what it had decoded."""

from __future__ import annotations

import weakref
from collections.abc import Iterator

import numpy as np
import pytest

from bioverify.errors import AudioTooShort, InvalidAudio, TooLarge
from bioverify.usecases.common import InferencePool, issue_of, prepare_each


@pytest.fixture
def pool() -> Iterator[InferencePool]:
    pool = InferencePool(workers=2, max_queue=32)
    yield pool
    pool.shutdown()


def test_rejected_items_free_what_they_decoded(pool: InferencePool) -> None:
    """The errors of rejected items are returned without the tracebacks (theirs, and their
    causes') whose frames would keep each item's decoded samples alive until all are done."""
    decoded: list[weakref.ref[np.ndarray]] = []

    def corrupted_after_decoding(samples: np.ndarray) -> None:
        raise ValueError("bad block")

    def analyse(item: int) -> int:
        samples = np.zeros(100_000, np.float32)  # what a clip decodes to
        decoded.append(weakref.ref(samples))
        if item == 0:
            return item
        if item == 1:
            raise AudioTooShort("no speech was detected in the audio")
        if item == 2:
            raise TooLarge("the audio lasts 301.0 s; at most 300 s are accepted")
        try:
            corrupted_after_decoding(samples)
        except ValueError as exc:
            raise InvalidAudio("could not decode the FLAC audio: the data is corrupted") from exc
        return item

    results = prepare_each(pool, analyse, [0, 1, 2, 3])
    assert results[0] == 0
    rejected = [r for r in results if not isinstance(r, int)]
    assert [issue_of(r).code for r in rejected] == [
        "NOT_ENOUGH_SPEECH",
        "TOO_LARGE",
        "INVALID_AUDIO",
    ]
    assert issue_of(rejected[2]).message == "could not decode the FLAC audio: the data is corrupted"
    assert isinstance(rejected[2].__cause__, ValueError)
    assert all(r.__traceback__ is None for r in rejected)
    assert [ref() is None for ref in decoded] == [True] * 4


def test_other_errors_still_fail_the_request(pool: InferencePool) -> None:
    def analyse(item: int) -> int:
        raise RuntimeError("a bug")

    with pytest.raises(RuntimeError, match="a bug"):
        prepare_each(pool, analyse, [0, 1])
