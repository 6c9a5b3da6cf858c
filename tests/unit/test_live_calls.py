"""LiveCalls: admission of live-call streams and cancellation of silent ones (fake clock)."""

from __future__ import annotations

import pytest

from bioverify.errors import Overloaded
from bioverify.server.live_calls import LiveCalls
from tests.unit.servicer_context import Context, ctx


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_admission_is_bounded_and_slots_come_back() -> None:
    calls = LiveCalls(2, 30.0, clock=Clock())
    with calls.admitted(ctx(Context())), calls.admitted(ctx(Context())):
        assert calls.active == 2
        with pytest.raises(Overloaded, match="2 live calls"), calls.admitted(ctx(Context())):
            pass
    assert calls.active == 0
    with calls.admitted(ctx(Context())):  # freed on the way out, also after an error
        with pytest.raises(RuntimeError), calls.admitted(ctx(Context())):
            raise RuntimeError("handler failed")
        assert calls.active == 1


def test_a_silent_call_is_cancelled_once_and_keeps_its_slot_until_its_handler_ends() -> None:
    clock = Clock()
    calls = LiveCalls(1, 30.0, clock=clock)
    silent = Context()
    with calls.admitted(ctx(silent)) as call:
        calls.join_tenant(call, "default")  # its config came
        clock.now += 29.9
        assert calls.cancel_idle() == 0
        calls.heard(call, 29.9)  # 29.9 s of audio arrived (in real time): idle from now
        clock.now += 29.9
        assert calls.cancel_idle() == 0 and silent.cancelled == 0
        clock.now += 0.2
        assert calls.cancel_idle() == 1 and silent.cancelled == 1
        clock.now += 60
        assert calls.cancel_idle() == 0 and silent.cancelled == 1  # once
        assert calls.active == 1  # until the handler notices and ends
        calls.heard(call, 100.0)  # a late message does not admit it again
    assert calls.active == 0


def test_a_call_at_work_is_never_idle() -> None:
    """A slow inference queue is not a silent caller: idleness counts from the end of work."""
    clock = Clock()
    calls = LiveCalls(1, 30.0, clock=clock)
    busy = Context()
    with calls.admitted(ctx(busy)) as call:
        calls.join_tenant(call, "default")
        clock.now += 10
        with calls.busy(call):
            clock.now += 120
            assert calls.cancel_idle() == 0
        calls.heard(call, 5.0)  # 5 s of audio in the 10 s of the caller's time: half rate
        clock.now += 29
        assert calls.cancel_idle() == 0
        clock.now += 2
        assert calls.cancel_idle() == 1 and busy.cancelled == 1


def test_a_caller_dripping_a_little_audio_is_still_silent() -> None:
    """A byte now and then (which MAX_CALL_SECONDS, counting audio, would never end) does
    not keep a slot: a call must carry at least half real time of audio to count as heard."""
    clock = Clock()
    calls = LiveCalls(1, 30.0, clock=clock)
    drip, talker = Context(), Context()
    with calls.admitted(ctx(drip)) as call:
        calls.join_tenant(call, "default")
        audio = 0.0
        for _ in range(20):  # one 1-byte mu-law chunk (0.125 ms) every 2 s
            clock.now += 2
            audio += 0.000125
            calls.heard(call, audio)
            if calls.cancel_idle():
                break
        assert drip.cancelled == 1 and 30 <= clock.now - 100.0 <= 32
    calls = LiveCalls(1, 30.0, clock=clock)
    with calls.admitted(ctx(talker)) as call:
        calls.join_tenant(call, "default")
        audio = 0.0
        for _ in range(600):  # 1 s chunks sent every 1.9 s: a slow but real caller
            clock.now += 1.9
            audio += 1.0
            calls.heard(call, audio)
            assert calls.cancel_idle() == 0


def test_one_tenant_cannot_take_every_slot() -> None:
    calls = LiveCalls(4, 30.0, max_per_tenant=2, clock=Clock())
    with calls.admitted(ctx(Context())) as a1, calls.admitted(ctx(Context())) as a2:
        calls.join_tenant(a1, "cards")
        calls.join_tenant(a2, "cards")
        with (
            calls.admitted(ctx(Context())) as a3,
            pytest.raises(Overloaded, match="tenant 'cards' already has 2 live calls"),
        ):
            calls.join_tenant(a3, "cards")
        with calls.admitted(ctx(Context())) as b1:
            calls.join_tenant(b1, "loans")  # another tenant still gets a slot
    with calls.admitted(ctx(Context())) as again:
        calls.join_tenant(again, "cards")  # the tenant's calls ended: its share is free
    unlimited = LiveCalls(2, 30.0, clock=Clock())
    with unlimited.admitted(ctx(Context())) as c1, unlimited.admitted(ctx(Context())) as c2:
        unlimited.join_tenant(c1, "cards")
        unlimited.join_tenant(c2, "cards")


def test_a_call_must_send_its_config_at_once() -> None:
    """Before its config a call holds a slot for no tenant: it gets CONFIG_S, not idle_s."""
    clock = Clock()
    calls = LiveCalls(4, 30.0, config_s=5.0, clock=clock)
    mute, prompt = Context(), Context()
    with calls.admitted(ctx(mute)), calls.admitted(ctx(prompt)) as configured:
        clock.now += 1.0
        calls.join_tenant(configured, "cards")
        clock.now += 3.9
        assert calls.cancel_idle() == 0
        clock.now += 0.2
        assert calls.cancel_idle() == 1 and mute.cancelled == 1 and prompt.cancelled == 0
