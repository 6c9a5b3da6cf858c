"""Which errors of the service mean "this sample is bad" and which mean "stop".

An evaluation counts a sample the service cannot use (no face, several faces, a corrupt image
or clip, too little speech, over the size limits) as failed and goes on. Any other error (a
missing or wrong API token, a service that is down or lacks the model, ...) would fail every
sample alike, so it must fail the command instead of turning into a report of failures.
"""

from __future__ import annotations

import grpc

from bioverify.client import BioverifyClientError


def is_sample_error(exc: BioverifyClientError) -> bool:
    """True when ``exc`` is about the sample sent: INVALID_ARGUMENT, or TOO_LARGE."""
    return exc.code == grpc.StatusCode.INVALID_ARGUMENT or exc.reason == "TOO_LARGE"
