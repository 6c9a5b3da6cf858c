"""mismatched_samples: which new samples of an enrolment do not look like the subject;
against_current_template: the check and the write see the same stored template."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from bioverify.errors import TemplateChanged
from bioverify.usecases.common import (
    ENROLMENT_WRITE_ATTEMPTS,
    SUBJECT_MISMATCH,
    against_current_template,
    mismatched_samples,
)


def _unit(*angles_deg: float) -> np.ndarray:
    """Unit vectors in a plane at these angles (cosine similarity = cos of the difference)."""
    radians = np.deg2rad(np.asarray(angles_deg, dtype=np.float64))
    return np.stack([np.cos(radians), np.sin(radians), np.zeros_like(radians)], axis=1).astype(
        np.float32
    )


THRESHOLD = float(np.cos(np.deg2rad(60)))  # similarity 0.5


def test_a_single_new_sample_has_nothing_to_disagree_with() -> None:
    assert mismatched_samples(_unit(0), None, THRESHOLD) == {}


def test_two_samples_of_different_people_are_both_refused() -> None:
    found = mismatched_samples(_unit(0, 90), None, THRESHOLD)
    assert sorted(found) == [0, 1]
    assert all(issue.code == SUBJECT_MISMATCH for issue in found.values())
    assert mismatched_samples(_unit(0, 50), None, THRESHOLD) == {}


def test_the_odd_one_out_is_refused_and_the_majority_kept() -> None:
    assert sorted(mismatched_samples(_unit(0, 20, 40, 150), None, THRESHOLD)) == [3]
    # two against two: nobody matches half of the others
    assert sorted(mismatched_samples(_unit(0, 10, 120, 130), None, THRESHOLD)) == [0, 1, 2, 3]
    # a chain: 0~1~2 but 0 and 2 apart; each matches at least half of the other two
    assert mismatched_samples(_unit(0, 55, 110), None, THRESHOLD) == {}


def test_an_existing_template_is_the_reference() -> None:
    template = _unit(0)[0] * 3.0  # not unit length: compared by cosine
    found = mismatched_samples(_unit(10, 80, -45), template, THRESHOLD)
    assert sorted(found) == [1]
    assert "enrolled template" in found[1].message
    # new samples agreeing among themselves but not with the template are all refused
    assert sorted(mismatched_samples(_unit(170, 175), template, THRESHOLD)) == [0, 1]


class ChangingStore:
    """Each read returns the next revision; the write fails while ``conflicts`` remain."""

    def __init__(self, conflicts: int) -> None:
        self.conflicts = conflicts
        self.reads = 0
        self.written_against: list[Any] = []

    def read(self) -> Any:
        self.reads += 1
        return f"revision {self.reads}"

    def write(self, current: Any) -> str:
        self.written_against.append(current)
        if self.conflicts:
            self.conflicts -= 1
            raise TemplateChanged("changed")
        return f"saved over {current}"


def test_a_changed_template_is_read_again_and_the_write_checked_against_it() -> None:
    store = ChangingStore(conflicts=2)
    assert against_current_template(store.read, store.write, stored=None) == "saved over revision 2"
    assert store.written_against == [None, "revision 1", "revision 2"]


def test_an_unchanged_template_is_read_once_by_the_caller() -> None:
    store = ChangingStore(conflicts=0)
    first: Any = "first"  # stands in for the stored Template, which is only passed through
    assert against_current_template(store.read, store.write, stored=first) == "saved over first"
    assert store.reads == 0


@pytest.mark.parametrize("attempts", [1, ENROLMENT_WRITE_ATTEMPTS])
def test_the_last_conflict_is_raised_after_the_attempts(attempts: int) -> None:
    store = ChangingStore(conflicts=attempts)
    with pytest.raises(TemplateChanged):
        against_current_template(store.read, store.write, stored=None, attempts=attempts)
    assert len(store.written_against) == attempts and store.reads == attempts - 1
