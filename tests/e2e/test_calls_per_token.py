"""MAX_CONCURRENT_RPCS_PER_TOKEN: one API token's calls in progress are capped, counted from
when each call starts (a unary call whose message never comes, a live call before its
config), so that one client cannot take every slot of the service; other tokens are served
meanwhile, and the token is served again once its calls end."""

from __future__ import annotations

import threading
from pathlib import Path

import grpc
import pytest

from bioverify.client import BioverifyClient, BioverifyClientError
from tests.conftest import never_sent, running_service, tokens_file, wait_until

BUSY, OTHER = "token-of-a-busy-client-0001", "token-of-another-client-0002"
CAP = 2


def listing_fails(client: BioverifyClient, failures: list[BioverifyClientError]) -> bool:
    """Whether ``client``'s ListSubjects is refused now (the refusal kept in ``failures``)."""
    try:
        client.list_subjects()
    except BioverifyClientError as exc:
        failures.append(exc)
        return True
    return False


def test_one_tokens_calls_in_progress_are_capped(tmp_path: Path, models_dir: Path) -> None:
    settings = {
        "auth_tokens_file": str(tokens_file(tmp_path, BUSY, OTHER)),
        "max_concurrent_rpcs": 8,
        "rpc_threads": 8,
        "max_concurrent_rpcs_per_token": CAP,
    }
    with running_service(tmp_path, models_dir, **settings) as target:
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
            held_unary = unary.future(never_sent(stop), metadata=metadata, timeout=60)
            held_live = live(never_sent(stop), metadata=metadata, timeout=60)
            refusals: list[BioverifyClientError] = []
            try:
                # Once both held calls have started (their handlers count them):
                assert wait_until(lambda: listing_fails(busy, refusals), 20), "no cap"
                refused = refusals[-1]
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
            # The held calls have ended: the token is served again.
            refusals.clear()
            served = wait_until(lambda: not listing_fails(busy, refusals), 20)
            assert served, "the token's calls were never freed"
            assert all(r.code == grpc.StatusCode.RESOURCE_EXHAUSTED for r in refusals)
            assert list(busy.list_subjects().subjects) == []
