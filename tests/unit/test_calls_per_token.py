"""CallsPerToken: the count of one token's calls in progress, without a server."""

from __future__ import annotations

from contextlib import ExitStack

import pytest

from bioverify.errors import ConfigurationError, Overloaded
from bioverify.server.token_calls import CallsPerToken
from bioverify.settings import Settings

A, B = "a" * 64, "b" * 64  # digests of two accepted tokens


def test_a_tokens_calls_are_capped_and_freed_however_they_end() -> None:
    calls = CallsPerToken(2, {A, B})
    with ExitStack() as held:
        held.enter_context(calls.admitted(A))
        held.enter_context(calls.admitted(A))
        with pytest.raises(Overloaded, match="already has 2 calls in progress"):
            held.enter_context(calls.admitted(A))
        with calls.admitted(B):  # another token
            assert calls.in_progress() == 3
    assert calls.in_progress() == 0
    with pytest.raises(RuntimeError), calls.admitted(A):
        raise RuntimeError("the call failed")
    assert calls.in_progress() == 0  # a failed call is freed too


def test_calls_without_a_known_token_or_without_a_cap_are_not_counted() -> None:
    capped, uncapped = CallsPerToken(1, {A}), CallsPerToken(0, {A})
    with ExitStack() as held:
        for _ in range(5):
            held.enter_context(capped.admitted(None))  # no token
            held.enter_context(capped.admitted("c" * 64))  # refused by the token check
            held.enter_context(uncapped.admitted(A))
        assert capped.in_progress() == uncapped.in_progress() == 0


def test_the_cap_needs_tokens() -> None:
    with pytest.raises(ConfigurationError, match="needs auth_tokens_file"):
        Settings(max_concurrent_rpcs_per_token=4).validate()
