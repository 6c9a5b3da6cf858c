"""`bioverify-admin enroll` end to end against a real service, with real LFW images and speech."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bioverify.client import BioverifyClient
from tests.conftest import DATA, lfw, mode

ADMIN = [sys.executable, "-m", "bioverify_admin.cli"]
SPEECH = sorted((DATA / "speaker" / "audio" / "libri_2414").glob("*.flac"))


@pytest.fixture(scope="module")
def client(face_server: str) -> Iterator[BioverifyClient]:
    with BioverifyClient(face_server, timeout=120.0) as c:
        c.wait_until_serving(timeout=60)
        yield c


def make_tree(root: Path) -> Path:
    people = {
        "alice": [lfw("Angela_Bassett", n) for n in (3, 4, 5)],
        "bob": [lfw("Roger_Federer", n) for n in (8, 9)],
        "carol": [lfw("Condoleezza_Rice", 1)],
    }
    for name, images in people.items():
        (root / name).mkdir(parents=True)
        for image in images:
            shutil.copy(image, root / name / image.name)
    (root / "carol" / "notes.txt").write_text("ignored")
    (root / "carol" / "broken.jpg").write_bytes(b"\xff\xd8\xff not really a jpeg")
    (root / "dave").mkdir()
    for clip in SPEECH[:3]:
        shutil.copy(clip, root / "dave" / clip.name)
    return root


def run_enroll(server: str, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*ADMIN, "enroll", *args, "--server", server, "--quiet"],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=300,
        umask=0o022,  # the usual one: what it creates is world-readable unless it says not
    )


def counts(client: BioverifyClient, tenant: str) -> dict[str, dict[int, int]]:
    return {
        s.subject_id: {t.modality: t.sample_count for t in s.templates}
        for s in client.iter_subjects(tenant=tenant)
    }


def test_tree_enroll_report_and_idempotent_rerun(
    client: BioverifyClient, face_server: str, tmp_path: Path
) -> None:
    tree = make_tree(tmp_path / "people")
    report = tmp_path / "report.json"
    out = run_enroll(
        face_server, str(tree), "--tenant", "bulk1", "--report", str(report), cwd=tmp_path
    )
    assert out.returncode == 0, out.stderr
    data = json.loads(report.read_text())
    summary = data["summary"]
    assert summary["accepted"] == 9 and summary["rejected"] == 1  # 6 faces + 3 clips; 1 broken
    rejected = [s for s in data["samples"] if not s["accepted"]]
    assert rejected[0]["path"].endswith("broken.jpg")
    assert rejected[0]["reasons"][0].startswith("INVALID_IMAGE")
    assert "broken.jpg" in out.stdout and "alice" in out.stdout
    assert counts(client, "bulk1") == {
        "alice": {1: 3},
        "bob": {1: 2},
        "carol": {1: 1},
        "dave": {2: 3},
    }
    # A re-run sends nothing and changes nothing.
    again = run_enroll(
        face_server, str(tree), "--tenant", "bulk1", "--report", str(report), cwd=tmp_path
    )
    assert again.returncode == 0
    assert json.loads(report.read_text())["summary"]["skipped_already_done"] == 10
    assert counts(client, "bulk1")["alice"] == {1: 3}
    # A new photo later is enrolled on its own.
    shutil.copy(lfw("Angela_Bassett", 6), tree / "alice")
    run_enroll(face_server, str(tree), "--tenant", "bulk1", cwd=tmp_path)
    assert counts(client, "bulk1")["alice"] == {1: 4}


def test_dry_run_checks_but_enrolls_nothing(
    client: BioverifyClient, face_server: str, tmp_path: Path
) -> None:
    tree = make_tree(tmp_path / "people")
    report = tmp_path / "dry.json"
    out = run_enroll(
        face_server,
        str(tree),
        "--tenant",
        "bulk-dry",
        "--dry-run",
        "--report",
        str(report),
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr
    assert json.loads(report.read_text())["summary"]["accepted"] == 9
    assert counts(client, "bulk-dry") == {}
    assert not (tmp_path / ".bioverify-enroll").exists()


def test_interrupted_csv_run_resumes_without_duplicates(
    client: BioverifyClient, face_server: str, tmp_path: Path
) -> None:
    rows = ["subject_id,modality,path"]
    images = [line.split("\t") for line in (DATA / "face_images.tsv").read_text().splitlines()[1:]]
    chosen = images[:60]
    for path, identity in chosen:
        rows.append(f"{identity},face,{DATA / path}")
    csv_path = tmp_path / "people.csv"
    csv_path.write_text("\n".join(rows) + "\n")
    journal = tmp_path / "journal.jsonl"
    env = {**os.environ}
    proc = subprocess.Popen(
        [
            *ADMIN,
            "enroll",
            str(csv_path),
            "--server",
            face_server,
            "--tenant",
            "bulk-csv",
            "--journal",
            str(journal),
            "--concurrency",
            "1",
            "--quiet",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
        cwd=tmp_path,
    )
    deadline = time.monotonic() + 120
    while not journal.exists() or len(journal.read_text().splitlines()) < 3:
        assert proc.poll() is None, "finished before it could be interrupted"
        assert time.monotonic() < deadline
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    partial = sum(c.get(1, 0) for c in counts(client, "bulk-csv").values())
    assert 0 < partial < len(chosen)
    out = subprocess.run(
        [
            *ADMIN,
            "enroll",
            str(csv_path),
            "--server",
            face_server,
            "--tenant",
            "bulk-csv",
            "--journal",
            str(journal),
            "--quiet",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    accepted: dict[str, set[str]] = {}
    for line in journal.read_text().splitlines():
        entry = json.loads(line)
        accepted.setdefault(entry["subject_id"], set())
        if entry["accepted"]:
            accepted[entry["subject_id"]].add(entry["sample"])
    final = counts(client, "bulk-csv")
    expected = {sid: {1: len(shas)} for sid, shas in accepted.items() if shas}
    assert final == expected  # every accepted image exactly once


def test_bad_source_is_a_clear_error(face_server: str, tmp_path: Path) -> None:
    bad = tmp_path / "x.csv"
    bad.write_text("name,file\nalice,a.jpg\n")
    out = run_enroll(face_server, str(bad), cwd=tmp_path)
    assert out.returncode == 2 and "subject_id" in out.stderr


def test_refused_enrollment_is_reported_and_not_journalled(
    client: BioverifyClient, face_server: str, tmp_path: Path
) -> None:
    """One clip with ~1.5 s of speech passes the per-clip minimum, but an enrollment needs 2 s:
    the service refuses it, so the run must not count the clip as accepted nor mark it done."""
    import numpy as np
    import soundfile as sf

    wave, rate = sf.read(SPEECH[0], dtype="float32")
    onset = int(np.argmax(np.abs(wave) > 0.05))
    (tmp_path / "people" / "erin").mkdir(parents=True)
    sf.write(
        tmp_path / "people" / "erin" / "short.flac", wave[onset : onset + int(1.6 * rate)], rate
    )
    report = tmp_path / "refused.json"
    args = (str(tmp_path / "people"), "--tenant", "bulk-refused", "--report", str(report))
    out = run_enroll(face_server, *args, cwd=tmp_path)
    assert out.returncode == 3, out.stderr  # nothing accepted
    data = json.loads(report.read_text())
    (sample,) = data["samples"]
    assert not sample["accepted"]
    assert any(r.startswith("NOT_ENOUGH_SPEECH") for r in sample["reasons"])
    assert counts(client, "bulk-refused") == {}
    again = run_enroll(face_server, *args, cwd=tmp_path)
    assert again.returncode == 3, again.stderr
    assert json.loads(report.read_text())["summary"]["skipped_already_done"] == 0


def test_every_sample_rejected_exits_3(face_server: str, tmp_path: Path) -> None:
    people = tmp_path / "people"
    (people / "gina").mkdir(parents=True)
    (people / "gina" / "broken.jpg").write_bytes(b"\xff\xd8\xff not really a jpeg")
    report = tmp_path / "rejected.json"
    args = (str(people), "--tenant", "bulk-none", "--report", str(report))
    out = run_enroll(face_server, *args, cwd=tmp_path)
    assert out.returncode == 3, out.stderr
    assert "no sample was accepted" in out.stderr
    summary = json.loads(report.read_text())["summary"]
    assert summary["samples_sent"] == 1 and summary["accepted"] == 0
    # The service answered for it: a re-run has nothing to send, and that is not a failure.
    again = run_enroll(face_server, *args, cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert json.loads(report.read_text())["summary"]["skipped_already_done"] == 1
    # A source without any sample enrolls nothing either.
    (tmp_path / "empty").mkdir()
    assert run_enroll(face_server, str(tmp_path / "empty"), cwd=tmp_path).returncode == 3


def test_unreadable_files_are_reported_apart_and_not_sent(
    client: BioverifyClient, face_server: str, tmp_path: Path
) -> None:
    csv_path = tmp_path / "people.csv"
    csv_path.write_text(
        "subject_id,modality,path\n"
        f"frank,face,{lfw('Roger_Federer', 8)}\n"
        "frank,face,gone/missing.jpg\n"
    )
    report = tmp_path / "unreadable.json"
    out = run_enroll(
        face_server, str(csv_path), "--tenant", "bulk-unreadable", "--report", str(report),
        cwd=tmp_path,
    )  # fmt: skip
    assert out.returncode == 1, out.stderr
    assert "could not be read" in out.stderr
    assert "failed to read (not sent)" in out.stdout and "missing.jpg" in out.stdout
    data = json.loads(report.read_text())
    assert data["summary"]["samples_sent"] == 1 and data["summary"]["accepted"] == 1
    assert data["summary"]["failed_to_read"] == 1 and data["summary"]["rejected"] == 0
    (unreadable,) = data["unreadable"]
    assert unreadable["path"].endswith("missing.jpg") and unreadable["subject_id"] == "frank"
    assert all(not s["path"].endswith("missing.jpg") for s in data["samples"])
    assert counts(client, "bulk-unreadable") == {"frank": {1: 1}}


def test_force_enrolls_again_what_was_deleted_on_the_service(
    client: BioverifyClient, face_server: str, tmp_path: Path
) -> None:
    tree = make_tree(tmp_path / "people")
    report = tmp_path / "force.json"
    args = (str(tree), "--tenant", "bulk-force", "--report", str(report))
    assert run_enroll(face_server, *args, cwd=tmp_path).returncode == 0
    before = counts(client, "bulk-force")
    client.delete_subject("bob", tenant="bulk-force")
    # The journal still holds bob's photos: a plain re-run sends nothing.
    assert run_enroll(face_server, *args, cwd=tmp_path).returncode == 0
    assert "bob" not in counts(client, "bulk-force")
    out = run_enroll(face_server, *args, "--force", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    summary = json.loads(report.read_text())["summary"]
    assert summary["skipped_already_done"] == 0 and summary["samples_sent"] == 10
    assert counts(client, "bulk-force") == before  # bob is back; nobody else got a sample twice


def plain_digests(tree: Path) -> dict[str, Path]:
    return {hashlib.sha256(p.read_bytes()).hexdigest(): p for p in tree.rglob("*") if p.is_file()}


def test_journal_is_private_and_holds_no_plain_digest(
    client: BioverifyClient, face_server: str, tmp_path: Path
) -> None:
    """The journal must not be the "was this photo enrolled?" check the service's keyed sample
    ids prevent: owner-only folder and files, and no plain SHA-256 of any sample file."""
    tree = make_tree(tmp_path / "people")
    report = tmp_path / "report.json"
    args = (str(tree), "--tenant", "bulk-private", "--report", str(report))
    assert run_enroll(face_server, *args, cwd=tmp_path).returncode == 0
    folder = tmp_path / ".bioverify-enroll"
    (journal,) = folder.glob("*.jsonl")
    assert mode(folder) == 0o700
    assert mode(journal) == 0o600 and mode(folder / "journal.key") == 0o600
    stored = "".join(p.read_text() for p in folder.iterdir()) + report.read_text()
    assert not [p for digest, p in plain_digests(tree).items() if digest in stored]
    lines = [json.loads(line) for line in journal.read_text().splitlines()]
    assert {e["subject_id"] for e in lines} == {"alice", "bob", "carol", "dave"}
    assert len({e["sample"] for e in lines}) == len(lines) == 10
    # Resume still works from the keyed journal, with the same key.
    key = (folder / "journal.key").read_bytes()
    assert run_enroll(face_server, *args, cwd=tmp_path).returncode == 0
    assert json.loads(report.read_text())["summary"]["skipped_already_done"] == 10
    assert (folder / "journal.key").read_bytes() == key
    assert counts(client, "bulk-private")["alice"] == {1: 3}


def test_journal_of_an_earlier_version_is_honoured_then_rewritten_keyed(
    client: BioverifyClient, face_server: str, tmp_path: Path
) -> None:
    tree = make_tree(tmp_path / "people")
    journal = tmp_path / "old.jsonl"
    alice = sorted((tree / "alice").iterdir())
    journal.write_text(
        "".join(
            json.dumps(
                {
                    "tenant": "bulk-old",
                    "subject_id": "alice",
                    "modality": "face",
                    "sha256": hashlib.sha256(p.read_bytes()).hexdigest(),
                    "accepted": True,
                }
            )
            + "\n"
            for p in alice
        )
    )
    journal.chmod(0o644)
    report = tmp_path / "report.json"
    args = (str(tree), "--tenant", "bulk-old", "--journal", str(journal), "--report", str(report))
    assert run_enroll(face_server, *args, cwd=tmp_path).returncode == 0
    # alice's photos were in the old journal: not sent (the service never saw them here).
    assert json.loads(report.read_text())["summary"]["skipped_already_done"] == 3
    assert "alice" not in counts(client, "bulk-old")
    assert counts(client, "bulk-old")["bob"] == {1: 2}
    # Rewritten: owner only, no plain digest left, and alice still counts as done.
    assert mode(journal) == 0o600 and mode(tmp_path / "journal.key") == 0o600
    text = journal.read_text()
    assert not [p for digest, p in plain_digests(tree).items() if digest in text]
    assert len(text.splitlines()) == 10
    assert run_enroll(face_server, *args, cwd=tmp_path).returncode == 0
    assert json.loads(report.read_text())["summary"]["skipped_already_done"] == 10


def test_subjects_delete_takes_the_subject_out_of_the_journal(
    client: BioverifyClient, face_server: str, tmp_path: Path
) -> None:
    tree = make_tree(tmp_path / "people")
    args = (str(tree), "--tenant", "bulk-delete")
    assert run_enroll(face_server, *args, cwd=tmp_path).returncode == 0
    before = counts(client, "bulk-delete")
    (journal,) = (tmp_path / ".bioverify-enroll").glob("*.jsonl")

    def delete(subject: str, *extra: str) -> subprocess.CompletedProcess[str]:
        command = ["subjects", "delete", subject, "--server", face_server]
        return subprocess.run(
            [*ADMIN, *command, "--tenant", "bulk-delete", *extra],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            timeout=120,
        )

    out = delete("bob")  # the default journal folder, here
    assert out.returncode == 0, out.stderr
    assert "dropped 2 journal line(s) of bob" in out.stderr
    assert "bob" not in counts(client, "bulk-delete")
    subjects = [json.loads(line)["subject_id"] for line in journal.read_text().splitlines()]
    assert "bob" not in subjects and len(subjects) == 8
    assert mode(journal) == 0o600
    # A plain re-run enrolls bob again (nothing else is sent).
    report = tmp_path / "report.json"
    assert run_enroll(face_server, *args, "--report", str(report), cwd=tmp_path).returncode == 0
    assert json.loads(report.read_text())["summary"]["samples_sent"] == 2
    assert counts(client, "bulk-delete") == before
    # A journal named explicitly; a subject the service no longer has still leaves it.
    client.delete_subject("carol", tenant="bulk-delete")
    gone = delete("carol", "--journal", str(journal))
    assert gone.returncode == 1 and "NOT_FOUND" in gone.stderr
    assert "dropped 2 journal line(s) of carol" in gone.stderr
    assert "carol" not in journal.read_text()
    missing = delete("alice", "--journal", str(tmp_path / "nowhere.jsonl"))
    assert missing.returncode == 2 and "nowhere.jsonl" in missing.stderr
    assert "alice" in counts(client, "bulk-delete")  # nothing deleted on a bad option
