"""Who decides whether liveness runs and blocks: the tenant's rule is a floor for requests."""

from __future__ import annotations

import pytest

from bioverify.usecases.common import RequestPolicy
from bioverify.usecases.liveness import LivenessGate, TenantLivenessPolicy

GATE = LivenessGate(
    face=None,
    voice=None,
    default=TenantLivenessPolicy(),
    tenants={
        "strict": TenantLivenessPolicy(require_face=True, require_voice=True),
        "trial": TenantLivenessPolicy(require_face=True, observe_only=True),
    },
)


@pytest.mark.parametrize(
    ("tenant", "modality", "request_policy", "expected"),
    [
        # a tenant that requires liveness: a request can neither waive nor soften it
        ("strict", "face", RequestPolicy(), (True, False)),
        ("strict", "face", RequestPolicy(require_liveness=False), (True, False)),
        ("strict", "voice", RequestPolicy(False, observe_only=True), (True, False)),
        ("strict", "face", RequestPolicy(observe_only=True), (True, False)),
        # the tenant's own observe mode applies to everyone
        ("trial", "face", RequestPolicy(require_liveness=False), (True, True)),
        ("trial", "voice", RequestPolicy(), (False, True)),
        # where nothing is required, a request may ask for it, and for observe mode
        ("", "face", RequestPolicy(), (False, False)),
        ("", "face", RequestPolicy(require_liveness=False), (False, False)),
        ("", "face", RequestPolicy(require_liveness=True), (True, False)),
        ("", "voice", RequestPolicy(require_liveness=True, observe_only=True), (True, True)),
        ("trial", "voice", RequestPolicy(require_liveness=True), (True, True)),
    ],
)
def test_the_tenants_rule_is_a_floor(
    tenant: str, modality: str, request_policy: RequestPolicy, expected: tuple[bool, bool]
) -> None:
    assert GATE.requirement(request_policy, tenant, modality) == expected
