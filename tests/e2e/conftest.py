"""Fixtures shared by the end-to-end tests (a module may define its own ``client``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bioverify.client import BioverifyClient


@pytest.fixture(scope="module")
def client(face_server: str) -> Iterator[BioverifyClient]:
    """An SDK client of the session's service, which does not retry (a test sees each answer)."""
    with BioverifyClient(face_server, timeout=120.0, retries=0) as c:
        c.wait_until_serving(timeout=60)
        yield c
