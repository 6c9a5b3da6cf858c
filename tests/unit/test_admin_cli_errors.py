"""bioverify-admin answers ordinary user errors (unreadable files, bad labels, a service that
cannot be reached) with one line on stderr and the documented exit status, never a traceback:
1 failed, 2 bad options or source. None of these needs a running service."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from bioverify_admin import cli
from bioverify_admin.datasets import (
    DatasetError,
    read_face_pad_labels,
    read_face_pairs,
    read_speaker_trials,
)

UNREACHABLE = "127.0.0.1:1"  # nothing listens on port 1


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = cli.main(argv)
    return code, capsys.readouterr().err


def one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("bioverify-admin: ") and "Traceback" not in err
    return lines[0]


@pytest.mark.parametrize(
    "argv",
    [
        ["subjects", "list", "--server", UNREACHABLE, "--tls-ca", "/nonexistent/ca.pem"],
        ["--tls-ca", "/nonexistent/ca.pem", "subjects", "show", "x", "--server", UNREACHABLE],
        ["eval", "face-pairs", "p.tsv", "--server", UNREACHABLE, "--tls-ca", "/nonexistent/ca.pem"],
    ],
)
def test_unreadable_tls_ca_is_a_usage_error(
    argv: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pairs = tmp_path / "p.tsv"
    pairs.write_text("path_a\tpath_b\tsame\na.jpg\tb.jpg\t1\na.jpg\tc.jpg\t0\n")
    argv = [str(pairs) if a == "p.tsv" else a for a in argv]
    code, err = run(argv, capsys)
    assert code == 2
    assert "--tls-ca: cannot read /nonexistent/ca.pem" in one_line(err)


def test_unreadable_or_half_client_certificate_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    base = ["subjects", "list", "--server", UNREACHABLE, "--tls-ca", str(ca)]
    code, err = run([*base, "--tls-cert", str(tmp_path / "no.pem"), "--tls-key", str(ca)], capsys)
    assert code == 2 and "--tls-cert: cannot read" in one_line(err)
    code, err = run([*base, "--tls-cert", str(ca), "--tls-key", str(tmp_path)], capsys)
    assert code == 2 and "--tls-key: cannot read" in one_line(err)
    code, err = run([*base, "--tls-cert", str(ca)], capsys)
    assert code == 2 and "go together" in one_line(err)
    code, err = run(["subjects", "list", "--server", UNREACHABLE, "--tls-cert", str(ca)], capsys)
    assert code == 2 and "go together" in one_line(err)


def test_non_utf8_sources_are_bad_sources(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    csv = tmp_path / "bin.csv"
    csv.write_bytes(b"subject_id,modality,path\n\xff\xfe\x00,face,a.jpg\n")
    code, err = run(["enroll", str(csv), "--server", UNREACHABLE, "--quiet"], capsys)
    assert code == 2 and f"cannot read {csv}: not UTF-8" in one_line(err)
    tsv = tmp_path / "bin.tsv"
    tsv.write_bytes(b"path_a\tpath_b\tsame\n\xff.jpg\tb.jpg\t1\n")
    for argv in (
        ["eval", "face-pairs", str(tsv)],
        ["eval", "speaker-trials", str(tsv)],
        ["eval", "face-identify", str(tsv)],
        ["eval", "face-pad", str(tsv)],
        ["eval", "voice-spoof", str(tsv)],
        ["calibrate", "face", "--pairs", str(tsv), "--server", UNREACHABLE],
    ):
        code, err = run([*argv, "--server", UNREACHABLE], capsys)
        assert code == 2 and f"cannot read {tsv}: not UTF-8" in one_line(err), argv


def test_short_rows_name_the_row(tmp_path: Path) -> None:
    tsv = tmp_path / "pairs.tsv"
    tsv.write_text("path_a\tpath_b\tsame\na.jpg\tb.jpg\t1\n\nc.jpg\td.jpg\n")
    with pytest.raises(DatasetError, match=r"pairs.tsv:4: no value for same"):
        read_face_pairs(tsv)


def test_enroll_fails_fast_and_like_subjects_when_the_service_cannot_be_reached(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    people = tmp_path / "people" / "alice"
    people.mkdir(parents=True)
    (people / "a.jpg").write_bytes(b"\xff\xd8\xff")
    lines = {}
    for name, argv in (
        ("enroll", ["enroll", str(people.parent), "--quiet", "--journal", str(tmp_path / "j")]),
        ("subjects", ["subjects", "list"]),
        ("eval", ["eval", "face-pad", str(tmp_path / "missing.tsv")]),
    ):
        if name == "eval":
            (tmp_path / "missing.tsv").write_text("path\tlabel\na.jpg\tbonafide\n")
        started = time.monotonic()
        code, err = run([*argv, "--server", UNREACHABLE], capsys)
        assert code == 1 and time.monotonic() - started < 20, name
        lines[name] = one_line(err)
    assert lines["enroll"] == lines["subjects"] == lines["eval"]
    assert lines["enroll"].startswith(f"bioverify-admin: cannot reach the service at {UNREACHABLE}")
    assert "UNAVAILABLE" in lines["enroll"]


@pytest.mark.parametrize("value", ["1", "true", "True", "TRUE", " tRuE "])
def test_same_person_labels_are_read_case_insensitively(tmp_path: Path, value: str) -> None:
    tsv = tmp_path / "pairs.tsv"
    tsv.write_text(f"path_a\tpath_b\tsame\na.jpg\tb.jpg\t{value}\nc.jpg\td.jpg\tFALSE\n")
    assert [p.same for p in read_face_pairs(tsv)] == [True, False]
    trials = tmp_path / "trials.tsv"
    trials.write_text(f"enroll_path\ttest_path\ttarget\na\tb\t{value}\nc\td\t0\n")
    assert [p.same for p in read_speaker_trials(trials)] == [True, False]


@pytest.mark.parametrize("value", ["yes", "maybe", "2", "", "no"])
def test_other_labels_stop_the_eval_naming_the_row(
    tmp_path: Path, value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    tsv = tmp_path / "pairs.tsv"
    tsv.write_text(f"path_a\tpath_b\tsame\na.jpg\tb.jpg\t1\nc.jpg\td.jpg\t{value}\ne\tf\t0\n")
    code, err = run(["eval", "face-pairs", str(tsv), "--server", UNREACHABLE], capsys)
    assert code == 2 and f"{tsv}:3: same {value!r} is not 1/true or 0/false" in one_line(err)
    trials = tmp_path / "trials.tsv"
    trials.write_text(f"enroll_path\ttest_path\ttarget\na\tb\t{value}\nc\td\t0\n")
    code, err = run(["eval", "speaker-trials", str(trials), "--server", UNREACHABLE], capsys)
    assert code == 2 and f"{trials}:2: target {value!r}" in one_line(err)


def test_a_missing_class_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tsv = tmp_path / "pairs.tsv"
    tsv.write_text("path_a\tpath_b\tsame\na.jpg\tb.jpg\t1\nc.jpg\td.jpg\ttrue\n")
    code, err = run(["eval", "face-pairs", str(tsv), "--server", UNREACHABLE], capsys)
    assert code == 2 and "no impostor pairs" in one_line(err)
    tsv.write_text("path_a\tpath_b\tsame\na.jpg\tb.jpg\t0\n")
    code, err = run(["calibrate", "face", "--pairs", str(tsv), "--server", UNREACHABLE], capsys)
    assert code == 2 and "no same-person pairs" in one_line(err)
    trials = tmp_path / "trials.tsv"
    trials.write_text("enroll_path\ttest_path\ttarget\na\tb\t0\n")
    code, err = run(["eval", "speaker-trials", str(trials), "--server", UNREACHABLE], capsys)
    assert code == 2 and "no target trials" in one_line(err)


def test_pad_labels_any_case_and_a_report_needs_both_classes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    labels = tmp_path / "pad.tsv"
    labels.write_text("path\tlabel\na.jpg\tBonafide\nb.jpg\tPRINT\n")
    assert [s.label for s in read_face_pad_labels(labels)] == ["bonafide", "print"]
    labels.write_text("path\tlabel\na.jpg\tbonafide\nb.jpg\tbonafide\n")
    report = ["--report", str(tmp_path / "r.html"), "--server", UNREACHABLE]
    code, err = run(["eval", "face-pad", str(labels), *report], capsys)  # before any connection
    assert code == 2 and "--report needs bona fide and attack samples" in one_line(err)


@pytest.mark.parametrize(
    "argv",
    [
        ["eval", "face-pairs", "p.tsv", "--concurrency", "0"],
        ["eval", "face-pad", "p.tsv", "--workers", "-1"],
        ["enroll", "people", "--server", "h:1", "--concurrency", "x"],
        ["eval", "face-identify", "p.tsv", "--holdout-share", "1.5"],
        ["calibrate", "face", "--pairs", "p.tsv", "--target-fmr", "1e-3,abc"],
        ["calibrate", "face", "--pairs", "p.tsv", "--target-fmr", "0"],
    ],
)
def test_bad_numbers_are_usage_errors(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as info:
        cli.build_parser().parse_args(argv)
    assert info.value.code == 2


@pytest.mark.parametrize(
    "command",
    [
        ["enroll", "people"],
        ["subjects", "list"],
        ["subjects", "show", "x"],
        ["subjects", "delete", "x"],
        ["subjects", "export"],
    ],
)
def test_a_tenant_the_service_would_refuse_is_a_usage_error_before_any_request(
    command: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    """Checked by the service's own rule: a bad --tenant would fail every request alike (and
    an enrolment would report every subject as failed)."""
    argv = [*command, "--server", UNREACHABLE]
    for bad in ("no spaces", "-dash-first", "x" * 65, "café"):
        with pytest.raises(SystemExit) as info:
            cli.build_parser().parse_args([*argv, "--tenant", bad])
        assert info.value.code == 2
        assert "argument --tenant" in capsys.readouterr().err
    for good in ("", "default", "cards-test.2"):
        assert cli.build_parser().parse_args([*argv, "--tenant", good]).tenant == good
    assert cli.build_parser().parse_args(argv).tenant == ""


def test_calibrate_images_need_two_identities(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    images = tmp_path / "images.tsv"
    images.write_text("path\tidentity\na.jpg\tann\nb.jpg\tann\n")
    code, err = run(["calibrate", "face", "--images", str(images)], capsys)
    assert code == 2 and "need at least two identities" in one_line(err)


def test_last_resort_one_line_for_os_errors_and_bugs_stay_visible(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def disk_full(args: object) -> int:
        raise OSError(28, "No space left on device", "/data/report.html")

    monkeypatch.setattr(cli, "cmd_token_digest", disk_full)
    code, err = run(["token-digest", "t"], capsys)
    assert code == 1
    assert one_line(err) == "bioverify-admin: /data/report.html: No space left on device"
    code, err = run(["-v", "token-digest", "t"], capsys)  # -v: the traceback too
    assert code == 1 and "Traceback" in err and err.strip().endswith("No space left on device")

    def bug(args: object) -> int:
        raise KeyError("a real bug")

    monkeypatch.setattr(cli, "cmd_token_digest", bug)
    with pytest.raises(KeyError):
        cli.main(["token-digest", "t"])
