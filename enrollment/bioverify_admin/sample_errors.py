"""Which errors of the service mean "this sample failed" and which mean "stop".

An evaluation counts a sample the service cannot use (no face, several faces, a corrupt image
or clip, too little speech, over the size limits) as failed and goes on, and so a sample the
service was still too busy to take after the SDK's retries (RESOURCE_EXHAUSTED, OVERLOADED:
its inference queue stayed full; the SDK retries it with backoff first). Any other error (a
missing or wrong API token, a service that is down or lacks the model, ...) would fail every
sample alike, so it must fail the command instead of turning into a report of failures. The
options that would make every request invalid alike (``--tenant``) are checked before any is
sent.
"""

from __future__ import annotations

import grpc

from bioverify.client import BioverifyClientError


def is_sample_error(exc: BioverifyClientError) -> bool:
    """True when ``exc`` fails the sample sent, not the run: INVALID_ARGUMENT, TOO_LARGE, or
    OVERLOADED (after the SDK's retries)."""
    return exc.code == grpc.StatusCode.INVALID_ARGUMENT or exc.reason in ("TOO_LARGE", "OVERLOADED")
