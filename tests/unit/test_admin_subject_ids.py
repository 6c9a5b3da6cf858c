"""The admin CLI sends subject ids as the service stores them (Unicode normal form C): folder
names read on macOS (NFD) and CSV values typed there are the same subject as elsewhere, and
journals written with NFD ids still match."""

from __future__ import annotations

import unicodedata
from pathlib import Path

from bioverify_admin.bulk_enroll import jobs_from_csv, jobs_from_tree
from bioverify_admin.journal import Entry, Journal, drop_subject

NFC = unicodedata.normalize("NFC", "José Müller")
NFD = unicodedata.normalize("NFD", "José Müller")


def test_folder_names_in_nfd_and_nfc_are_one_nfc_subject(tmp_path: Path) -> None:
    assert NFC != NFD
    for name, photo in ((NFD, "a.jpg"), (NFC, "b.jpg")):  # two folders on Linux, one on macOS
        (tmp_path / name).mkdir()
        (tmp_path / name / photo).write_bytes(b"jpeg")
    (job,) = jobs_from_tree(tmp_path)
    assert job.subject_id == NFC and job.modality == "face"
    assert sorted(p.name for p in job.files) == ["a.jpg", "b.jpg"]


def test_csv_subject_ids_are_nfc(tmp_path: Path) -> None:
    csv = tmp_path / "people.csv"
    csv.write_text(f"subject_id,modality,path\n{NFD},face,a.jpg\n{NFC},face,b.jpg\n", "utf-8")
    (job,) = jobs_from_csv(csv)
    assert job.subject_id == NFC and len(job.files) == 2


def test_journal_lines_written_with_nfd_ids_match_the_nfc_subject(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    journal = Journal(path)
    fingerprint = journal.fingerprint(b"photo")
    with path.open("a", encoding="utf-8") as f:  # as an earlier version wrote a macOS folder
        f.write(Entry("default", NFD, "face", fingerprint, True).line() + "\n")
        f.write(Entry("default", "other", "face", fingerprint, True).line() + "\n")
    assert Journal(path).done("default", NFC, "face", fingerprint, b"photo")
    assert drop_subject(path, "default", NFC) == 1
    assert not Journal(path).done("default", NFC, "face", fingerprint, b"photo")
    assert Journal(path).done("default", "other", "face", fingerprint, b"photo")


def test_the_default_tenant_named_or_left_out_is_one_tenant(tmp_path: Path) -> None:
    """Lines journalled without --tenant ("") and with --tenant default are the same
    tenant's, as on the service: ``subjects delete`` takes both out either way, and a re-run
    either way finds them done. Another tenant's lines stay."""
    for deleted_as in ("", "default"):
        path = tmp_path / f"journal-{deleted_as or 'none'}.jsonl"
        journal = Journal(path)
        fingerprint = journal.fingerprint(b"photo")
        journal.record(
            Entry(tenant, subject, "face", fingerprint, True)
            for tenant, subject in (("", NFC), ("default", NFC), ("cards", NFC), ("", "other"))
        )
        for tenant in ("", "default"):
            assert Journal(path).done(tenant, "other", "face", fingerprint, b"photo")
        assert drop_subject(path, deleted_as, NFC) == 2
        again = Journal(path)
        assert not again.done("", NFC, "face", fingerprint, b"photo")
        assert not again.done("default", NFC, "face", fingerprint, b"photo")
        assert again.done("cards", NFC, "face", fingerprint, b"photo")
        assert again.done("default", "other", "face", fingerprint, b"photo")


def test_the_default_tenant_named_or_left_out_has_one_journal(tmp_path: Path) -> None:
    from bioverify_admin.bulk_enroll import default_journal_path

    source = tmp_path / "people"
    left_out = default_journal_path(source, "host:50051", "")
    assert default_journal_path(source, "host:50051", "default") == left_out
    assert default_journal_path(source, "host:50051", "branch-7") != left_out
