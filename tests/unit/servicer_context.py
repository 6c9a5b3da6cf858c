"""What the watchdogs use of a gRPC servicer context, for tests without a server."""

from __future__ import annotations

from typing import Any, cast

import grpc


class Context:
    """Counts its cancellations; peer() as gRPC gives it."""

    def __init__(self) -> None:
        self.cancelled = 0

    def peer(self) -> str:
        return "ipv4:127.0.0.1:5000"

    def cancel(self) -> None:
        self.cancelled += 1


def ctx(context: Context) -> grpc.ServicerContext:
    return cast(grpc.ServicerContext, cast(Any, context))
