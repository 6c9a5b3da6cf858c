"""CallsPerToken: the count of one token's calls in progress, without a server."""

from __future__ import annotations

from contextlib import ExitStack

import pytest

from bioverify.errors import Overloaded
from bioverify.server.token_calls import CallsPerToken
from tests.unit.servicer_context import Context, ctx


def test_a_tokens_calls_are_capped_and_freed_however_they_end() -> None:
    calls = CallsPerToken(2)
    with ExitStack() as held:
        held.enter_context(calls.admitted(ctx(Context("a"))))
        held.enter_context(calls.admitted(ctx(Context("a"))))
        with pytest.raises(Overloaded, match="already has 2 calls in progress"):
            held.enter_context(calls.admitted(ctx(Context("a"))))
        with calls.admitted(ctx(Context("b"))):  # another token
            assert calls.in_progress() == 3
    assert calls.in_progress() == 0
    with pytest.raises(RuntimeError), calls.admitted(ctx(Context("a"))):
        raise RuntimeError("the call failed")
    assert calls.in_progress() == 0  # a failed call is freed too


def test_calls_without_a_token_or_without_a_cap_are_not_counted() -> None:
    capped, uncapped = CallsPerToken(1), CallsPerToken(0)
    with ExitStack() as held:
        for _ in range(5):
            held.enter_context(capped.admitted(ctx(Context())))
            held.enter_context(uncapped.admitted(ctx(Context("a"))))
        assert capped.in_progress() == uncapped.in_progress() == 0
