"""Private files: created 0600 whatever the umask; only regular files are restricted."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from bioverify import fileio
from bioverify.fileio import write_private_text
from tests.conftest import mode


def test_a_new_file_is_private_and_an_existing_one_is_restricted(tmp_path: Path) -> None:
    previous = os.umask(0o022)
    try:
        fresh = tmp_path / "report.json"
        write_private_text(fresh, "{}")
        assert mode(fresh) == 0o600 and fresh.read_text() == "{}"
        loose = tmp_path / "old.json"
        loose.write_text("old")
        loose.chmod(0o644)
        write_private_text(loose, "new")
        assert mode(loose) == 0o600 and loose.read_text() == "new"
    finally:
        os.umask(previous)


def test_something_other_than_a_regular_file_keeps_its_mode(tmp_path: Path) -> None:
    """--report /dev/null (or a FIFO) must not change the mode of what it names: as root that
    made /dev/null 0600 for everyone, as anyone else it failed."""
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo, 0o644)
    fifo.chmod(0o644)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)  # so opening it to write does not block
    try:
        write_private_text(fifo, "through the pipe")
        assert os.read(reader, 100) == b"through the pipe"
    finally:
        os.close(reader)
    assert stat.S_ISFIFO(fifo.stat().st_mode) and mode(fifo) == 0o644


def test_nothing_already_at_the_path_is_written_through(tmp_path: Path) -> None:
    """In a folder others can write to, a file someone else created at the path (and holds
    open) or a link they planted there must not receive the text: it is written aside and
    renamed over the path."""
    planted = tmp_path / "export.jsonl"
    planted.write_text("")
    planted.chmod(0o666)
    with planted.open() as held:  # another user's descriptor on the planted file
        write_private_text(planted, '{"subject_id": "alice"}\n')
        assert held.read() == ""
    assert mode(planted) == 0o600 and planted.read_text() == '{"subject_id": "alice"}\n'

    elsewhere = tmp_path / "elsewhere.txt"
    elsewhere.write_text("theirs")
    link = tmp_path / "report.html"
    link.symlink_to(elsewhere)
    write_private_text(link, "<html>scores</html>")
    assert elsewhere.read_text() == "theirs"
    assert not link.is_symlink() and link.read_text() == "<html>scores</html>"
    assert mode(link) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "elsewhere.txt",
        "export.jsonl",
        "report.html",
    ]  # no temporary file left behind


@pytest.mark.skipif(os.geteuid() != 0, reason="making a FIFO of another user needs root")
def test_a_planted_link_to_someone_elses_fifo_is_replaced(tmp_path: Path) -> None:
    fifo = tmp_path / "attacker_fifo"
    os.mkfifo(fifo, 0o666)
    os.chown(fifo, 65534, 65534)  # nobody's
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    try:
        for planted in (tmp_path / "export.jsonl", fifo):  # a link to it, and the FIFO itself
            if planted != fifo:
                planted.symlink_to(fifo)
            write_private_text(planted, '{"subject_id": "alice"}\n')
            assert not planted.is_symlink() and planted.read_text() == '{"subject_id": "alice"}\n'
        assert os.read(reader, 100) == b""  # nothing reached the attacker's pipe
    finally:
        os.close(reader)


def test_own_file_in_a_folder_without_write_access_is_written_in_place(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No new file can be made beside it (a folder the caller may not write): the caller's
    own existing file is then written as it is, never through a link."""
    target = tmp_path / "report.json"
    target.write_text("old")

    def no_new_files(path: Path, text: str) -> None:
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(fileio, "_replace_with", no_new_files)
    write_private_text(target, "new")
    assert target.read_text() == "new" and mode(target) == 0o600
    link = tmp_path / "link.json"
    link.symlink_to(target)
    with pytest.raises(PermissionError):
        write_private_text(link, "through the link")  # not the caller's regular file
    assert target.read_text() == "new"
