"""MAX_CONCURRENT_RPCS_PER_TOKEN: one API token's calls in progress are capped, counted from
when each call starts (a unary call whose message never comes, a live call before its
config), so that one client cannot take every slot of the service; other tokens are served
meanwhile, and the token is served again once its calls end."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from bioverify.client import BioverifyClient, BioverifyClientError
from bioverify.errors import ConfigurationError
from bioverify.server.auth import token_digest
from bioverify.settings import Settings
from tests.conftest import running_service

BUSY, OTHER = "token-of-a-busy-client-0001", "token-of-another-client-0002"
CAP = 2


def _never_sent(stop: threading.Event) -> Iterator[bytes]:
    """A request stream that sends nothing until ``stop``."""
    stop.wait()
    return
    yield b""


def _settings(tmp_path: Path) -> dict[str, object]:
    tokens = tmp_path / "tokens"
    tokens.write_text(f"{token_digest(BUSY)}\n{token_digest(OTHER)}\n")
    return {
        "auth_tokens_file": str(tokens),
        "max_concurrent_rpcs": 8,
        "rpc_threads": 8,
        "max_concurrent_rpcs_per_token": CAP,
    }


def test_one_tokens_calls_in_progress_are_capped(tmp_path: Path, models_dir: Path) -> None:
    with running_service(tmp_path, models_dir, **_settings(tmp_path)) as target:
        stop = threading.Event()
        metadata = (("authorization", f"Bearer {BUSY}"),)
        with (
            grpc.insecure_channel(target) as channel,
            BioverifyClient(target, token=BUSY, timeout=30, retries=0) as busy,
            BioverifyClient(target, token=OTHER, timeout=30, retries=0) as other,
        ):
            busy.wait_until_serving(timeout=60)
            unary = channel.stream_unary("/bioverify.v1.SubjectService/ListSubjects")
            live = channel.stream_stream("/bioverify.v1.VoiceService/VerifyVoiceStream")
            held_unary = unary.future(_never_sent(stop), metadata=metadata, timeout=60)
            held_live = live(_never_sent(stop), metadata=metadata, timeout=60)
            try:
                deadline = time.monotonic() + 20
                while True:  # both held calls have started (their handlers count them)
                    try:
                        busy.list_subjects()
                    except BioverifyClientError as exc:
                        refused = exc
                        break
                    assert time.monotonic() < deadline, "the cap never took effect"
                    time.sleep(0.05)
                assert refused.code == grpc.StatusCode.RESOURCE_EXHAUSTED
                assert refused.reason == "OVERLOADED"
                assert "this API token already has 2 calls in progress" in refused.message
                assert list(other.list_subjects().subjects) == []  # another token is served
            finally:
                stop.set()
            for ended in (held_unary.result, lambda: list(held_live)):
                with pytest.raises(grpc.RpcError) as info:  # ended without a message
                    ended()
                assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            deadline = time.monotonic() + 20
            while True:  # the held calls have ended: the token is served again
                try:
                    assert list(busy.list_subjects().subjects) == []
                    break
                except BioverifyClientError as exc:
                    assert exc.code == grpc.StatusCode.RESOURCE_EXHAUSTED
                    assert time.monotonic() < deadline, "the token's calls were never freed"
                    time.sleep(0.05)


def test_the_cap_needs_tokens() -> None:
    with pytest.raises(ConfigurationError, match="needs auth_tokens_file"):
        Settings(max_concurrent_rpcs_per_token=4).validate()
