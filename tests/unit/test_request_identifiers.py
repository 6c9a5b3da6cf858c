"""Identifiers a client sends (subject ids, tenants) are checked before anything costly is done
with them, and only what the contract allows passes."""

from __future__ import annotations

import pytest

from bioverify.errors import InvalidInput, InvalidSubjectId
from bioverify.subject_ids import legacy_subject_id_forms
from bioverify.usecases.common import validate_subject_id, validate_tenant

# Runs of combining marks of two classes: NFC reorders them in quadratic time (600 KB took
# about a minute, holding the interpreter lock), so such an id must be refused before normalising.
COMBINING_RUN = "a" + "\u0301\u0316" * 150_000


@pytest.mark.timeout(20)
def test_a_long_run_of_combining_marks_is_refused_before_normalising() -> None:
    with pytest.raises(InvalidSubjectId, match="longer than 128 characters"):
        validate_subject_id(COMBINING_RUN)
    assert legacy_subject_id_forms(COMBINING_RUN) == []


def test_an_nfd_id_of_the_longest_nfc_length_is_still_accepted() -> None:
    nfc = "é" * 128
    nfd = "e\u0301" * 128  # twice as long as sent, the same id
    assert validate_subject_id(nfd) == nfc
    assert nfc in legacy_subject_id_forms(nfd)
    with pytest.raises(InvalidSubjectId, match="longer than 128"):
        validate_subject_id("e\u0301" * 129)


@pytest.mark.parametrize("tenant", ["bank\n", "bank\r\n", "\nbank", "bank ", "bank/x", "-bank"])
def test_tenant_names_are_the_whole_string(tenant: str) -> None:
    with pytest.raises(InvalidInput, match="tenant must be"):
        validate_tenant(tenant)


def test_valid_tenant_names_pass() -> None:
    assert validate_tenant("") == "default"
    assert validate_tenant("cards-test.eu_1") == "cards-test.eu_1"
    assert validate_tenant("a" * 64) == "a" * 64
    with pytest.raises(InvalidInput):
        validate_tenant("a" * 65)
