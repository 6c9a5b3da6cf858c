"""RequestReads: a unary call whose request message is late is cancelled (fake clock)."""

from __future__ import annotations

from bioverify.server.request_reads import RequestReads
from tests.unit.servicer_context import Context, ctx


def test_a_late_message_cancels_its_call_once_and_an_arrived_one_never() -> None:
    now = [100.0]
    reads = RequestReads(60.0, clock=lambda: now[0])
    late, prompt = Context(), Context()
    with reads.awaiting(ctx(prompt)):
        now[0] += 1.0
    assert reads.waiting == 0  # its message came: nothing left to watch
    with reads.awaiting(ctx(late)):
        now[0] += 59.9
        assert reads.cancel_late() == 0
        now[0] += 0.1
        assert reads.cancel_late() == 1 and late.cancelled == 1
        now[0] += 60
        assert reads.cancel_late() == 0 and late.cancelled == 1  # once
    assert prompt.cancelled == 0 and reads.waiting == 0
