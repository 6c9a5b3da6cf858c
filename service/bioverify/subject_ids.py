"""Subject ids as versions before NFC ids stored them ("legacy" ids): those versions took an
id exactly as sent, so a subject enrolled from macOS may be held under an NFD id and one typed
with a NO-BREAK SPACE under that. This version stores and creates ids only in NFC with plain
spaces (``bioverify.usecases.common.validate_subject_id``) but still reaches such subjects.
Pure functions, light enough for the admin tool."""

from __future__ import annotations

import unicodedata

NFD_MAX_EXPANSION = 4
"""Unicode normalisation bounds how much NFD lengthens a string (UAX #15: at most 4 times), so
an id of ``max_length`` characters in NFC is never more than 4 times that long as sent."""


def too_long_to_normalise(subject_id: str, max_length: int) -> bool:
    """Whether ``subject_id`` is too long to be any form of an id of ``max_length``
    characters, checked before normalising it: normalisation reorders runs of combining marks
    in quadratic time (holding the interpreter lock), so a long run sent as an id would stall
    the whole service."""
    return len(subject_id) > NFD_MAX_EXPANSION * max_length


def legacy_subject_id_forms(subject_id: str, max_length: int = 128) -> list[str]:
    """The forms a version before NFC ids may have stored the subject ``subject_id`` names
    under: its NFC form, the id as sent and its NFD form (as macOS types it), each once and
    only when such a version accepted it (1 to ``max_length`` characters, not padded, no
    control, format or unassigned character; any separator). Those versions stored ids
    exactly as sent, so "José" enrolled from macOS is held in NFD, "Ann Lee" typed with a
    NO-BREAK SPACE with that."""
    forms: list[str] = []
    if too_long_to_normalise(subject_id, max_length):
        return forms
    for form in (
        unicodedata.normalize("NFC", subject_id),
        subject_id,
        unicodedata.normalize("NFD", subject_id),
    ):
        if form not in forms and _legacy_valid(form, max_length):
            forms.append(form)
    return forms


def legacy_subject_id_problem(subject_id: str) -> str:
    """Why this version would not store ``subject_id`` as it is (empty: it would): not in NFC,
    or holding a separator other than U+0020. Ids a version before NFC ids stored that way
    are still reached (``bioverify.usecases.common.on_stored_form``), but only as stored."""
    if unicodedata.normalize("NFC", subject_id) != subject_id:
        return "not in Unicode normal form C"
    separator = odd_separator(subject_id)
    return f"holds {separator}" if separator else ""


def basic_problem(subject_id: str, max_length: int) -> str:
    """What every version refused in a subject id (empty: nothing): empty, longer than
    ``max_length``, padded with white space, or holding a control, format or unassigned
    character (category C*)."""
    if not subject_id:
        return "subject_id is empty"
    if len(subject_id) > max_length:
        return f"subject_id is longer than {max_length} characters"
    if subject_id != subject_id.strip():
        return "subject_id has leading or trailing white space"
    for ch in subject_id:
        if unicodedata.category(ch).startswith("C"):
            return f"subject_id contains a control or invisible character (U+{ord(ch):04X})"
    return ""


def odd_separator(subject_id: str) -> str:
    """The first space or separator character other than U+0020 in ``subject_id``, named
    ("U+00A0 NO-BREAK SPACE"), or empty when there is none."""
    for ch in subject_id:
        if unicodedata.category(ch).startswith("Z") and ch != " ":
            return f"U+{ord(ch):04X} {unicodedata.name(ch, 'separator')}"
    return ""


def _legacy_valid(subject_id: str, max_length: int) -> bool:
    return not basic_problem(subject_id, max_length)
