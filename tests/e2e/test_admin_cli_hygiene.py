"""bioverify-admin as an operator runs it, in its own process: secrets read from standard
input (not the command line), private output files, quiet ends of pipes, and exit statuses
and messages as the README documents them."""

from __future__ import annotations

import os
import pty
import select
import shutil
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bioverify.client import BioverifyClient, BioverifyClientError
from bioverify.server.auth import token_digest
from tests.conftest import lfw

ADMIN = [sys.executable, "-m", "bioverify_admin.cli"]
TOKEN = "s3cret token with spaces "


def admin(*argv: str, stdin: str | None = "") -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BIOVERIFY_")}
    return subprocess.run(
        [*ADMIN, *argv], input=stdin, capture_output=True, text=True, timeout=120, env=env
    )


def test_token_digest_reads_the_token_from_standard_input() -> None:
    """`-` or no TOKEN: the token comes from stdin (one trailing newline is not part of it),
    so it shows neither in `ps` nor in the shell's history; `-` is never the token itself."""
    for argv in ((), ("-",)):
        for piped in (TOKEN, TOKEN + "\n", TOKEN + "\r\n"):
            out = admin("token-digest", *argv, stdin=piped)
            assert out.returncode == 0, out.stderr
            assert out.stdout == token_digest(TOKEN) + "\n"
    out = admin("token-digest", "--tenants", "cards,cards-test", stdin=TOKEN + "\n")
    assert out.stdout == f"{token_digest(TOKEN)}  cards,cards-test\n"
    dashes = "-" * 20  # piped, "-" is the token itself, not "read standard input"
    assert admin("token-digest", stdin=dashes + "\n").stdout == token_digest(dashes) + "\n"
    # the argument still works, and its help says what it exposes
    assert admin("token-digest", TOKEN).stdout == token_digest(TOKEN) + "\n"
    assert "process list" in " ".join(admin("token-digest", "--help").stdout.split())


def test_token_digest_refuses_an_empty_token() -> None:
    for argv, piped in (((), ""), ((), "\n"), (("-",), ""), (("",), "")):
        out = admin("token-digest", *argv, stdin=piped)
        assert out.returncode == 2 and out.stdout == ""
        assert out.stderr == "bioverify-admin: the token is empty\n"


def test_token_digest_asks_for_the_token_without_echo_on_a_terminal() -> None:
    pid, fd = pty.fork()
    if pid == 0:  # the child: bioverify-admin on a terminal
        env = {k: v for k, v in os.environ.items() if not k.startswith("BIOVERIFY_")}
        os.execve(sys.executable, [*ADMIN, "token-digest"], env)
    seen = b""
    try:
        seen += _read_until(fd, b"token (not echoed): ")
        os.write(fd, TOKEN.encode() + b"\n")
        seen += _read_until(fd, token_digest(TOKEN).encode())
    finally:
        _, status = os.waitpid(pid, 0)
        os.close(fd)
    assert os.waitstatus_to_exitcode(status) == 0
    assert TOKEN.strip().encode() not in seen  # not echoed


def _read_until(fd: int, wanted: bytes, timeout: float = 60.0) -> bytes:
    seen = b""
    deadline = time.monotonic() + timeout
    while wanted not in seen:
        ready, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
        assert ready, f"waited for {wanted!r}, saw {seen!r}"
        try:
            seen += os.read(fd, 1024)
        except OSError:  # the child closed the terminal
            break
    assert wanted in seen, seen
    return seen


@pytest.fixture
def open_umask() -> Iterator[None]:
    """The usual umask (022), under which a plain write makes a file every user can read."""
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


def permissions(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.usefixtures("open_umask")
def test_files_the_admin_tool_writes_are_private(
    face_server: str, data_dir: Path, tmp_path: Path
) -> None:
    """The enrolment report (subject ids, file paths, reasons), the export (ids, metadata)
    and the HTML evaluation report (file names, scores) are created 0600 whatever the umask,
    and one already there that others could read is restricted."""
    people = tmp_path / "people" / "Roger Federer"
    people.mkdir(parents=True)
    shutil.copy(lfw("Roger_Federer", 8), people / "a.jpg")
    report = tmp_path / "report.json"
    export = tmp_path / "subjects.jsonl"
    report.write_text("{}\n")  # an old one, world-readable
    export.write_text("")
    assert permissions(report) == permissions(export) == 0o644
    server = ("--server", face_server, "--tenant", "private-files")
    enrolled = admin(
        "enroll", str(tmp_path / "people"), *server, "--quiet", "--report", str(report)
    )
    assert enrolled.returncode == 0, enrolled.stderr
    assert "Roger Federer" in report.read_text()
    exported = admin("subjects", "export", *server, "--out", str(export))
    assert exported.returncode == 0, exported.stderr
    assert "Roger Federer" in export.read_text()
    header, *rows = (data_dir / "face_pad_labels.tsv").read_text().splitlines()
    labels = tmp_path / "pad.tsv"
    chosen = [next(r for r in rows if r.split("\t")[1] == kind) for kind in ("bonafide", "print")]
    labels.write_text("\n".join([header, *chosen]) + "\n")
    (tmp_path / Path(chosen[0]).parts[0]).symlink_to(data_dir / Path(chosen[0]).parts[0])
    pad = tmp_path / "pad.html"
    evaluated = admin(
        "eval", "face-pad", str(labels), "--server", face_server, "--report", str(pad)
    )
    assert evaluated.returncode == 0, evaluated.stderr
    assert pad.read_text().startswith("<!DOCTYPE html>")
    for path in (report, export, pad):
        assert permissions(path) == 0o600, path
    assert not list(tmp_path.glob("*.partial"))


def test_a_reader_that_leaves_early_ends_the_output_quietly(face_server: str) -> None:
    """`bioverify-admin subjects list --json | head`: the reader closing the pipe is no error
    to print; the tool stops quietly with 141 (128 + SIGPIPE), as `yes | head` does."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BIOVERIFY_")}
    for argv in (
        ("subjects", "list", "--json", "--server", face_server),
        ("models", "list", "--json"),
    ):
        proc = subprocess.Popen(
            [*ADMIN, *argv],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            env=env,
        )
        assert proc.stdout is not None and proc.stderr is not None
        proc.stdout.close()  # the reader has gone before a byte was written
        err = proc.stderr.read().decode()
        assert proc.wait(timeout=120) == 141, err
        assert err == "", err
        proc.stderr.close()


def test_enroll_from_a_path_that_does_not_exist_says_so(tmp_path: Path) -> None:
    for missing in (tmp_path / "nonexist", tmp_path / "people.csv"):
        out = admin(
            "enroll",
            f"{missing}/" if missing.suffix == "" else str(missing),
            "--server",
            "127.0.0.1:1",
        )
        assert out.returncode == 2
        assert out.stderr.endswith(": no such file or folder\n"), out.stderr
        assert str(missing) in out.stderr and out.stderr.count("\n") == 1


def test_the_throwaway_service_of_an_eval_takes_only_its_own_token(models_dir: Path) -> None:
    """`eval` without --server starts a service that enrols real samples: other local users
    must not be able to use it while it runs."""
    from bioverify_admin.local_server import local_server

    token = "this-run-only-0123456789"
    env = {"BIOVERIFY_MODEL_DIR": str(models_dir), "BIOVERIFY_FACE_LIVENESS_PACK": "none"}
    with local_server(extra_env=env, token=token) as target:
        with BioverifyClient(target, timeout=60, retries=0, token=token) as owner:
            owner.wait_until_serving(timeout=180)
            assert list(owner.list_subjects().subjects) == []
        for other in (None, "someone-else-0123456789"):
            with BioverifyClient(target, timeout=60, retries=0, token=other) as client:
                with pytest.raises(BioverifyClientError) as info:
                    client.list_subjects()
                assert info.value.code.name == "UNAUTHENTICATED"
