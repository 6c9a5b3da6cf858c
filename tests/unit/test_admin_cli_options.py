"""bioverify-admin's connection options (TLS, token) go before or after the command."""

from __future__ import annotations

from pathlib import Path

import pytest

from bioverify_admin.cli import build_parser


@pytest.mark.parametrize(
    "argv",
    [
        ["--token", "t", "--tls-ca", "ca.pem", "subjects", "list", "--server", "h:1"],
        ["subjects", "list", "--server", "h:1", "--token", "t", "--tls-ca", "ca.pem"],
        ["--tls-ca", "ca.pem", "subjects", "list", "--token", "t", "--server", "h:1"],
        ["enroll", "people", "--server", "h:1", "--token", "t", "--tls-ca", "ca.pem"],
        ["eval", "face-pairs", "p.tsv", "--token", "t", "--tls-ca", "ca.pem"],
        ["calibrate", "face", "--pairs", "p.tsv", "--token", "t", "--tls-ca", "ca.pem"],
    ],
)
def test_admin_connection_options_before_or_after_the_command(argv: list[str]) -> None:
    args = build_parser().parse_args(argv)
    assert args.token == "t" and args.tls_ca == Path("ca.pem")
    assert args.tls_cert is None and args.tls_key is None


def test_admin_connection_option_after_the_command_wins() -> None:
    args = build_parser().parse_args(
        ["--token", "before", "subjects", "show", "x", "--server", "h:1", "--token", "after"]
    )
    assert args.token == "after"


def test_admin_local_commands_take_no_connection_options() -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["models", "list", "--token", "t"])
