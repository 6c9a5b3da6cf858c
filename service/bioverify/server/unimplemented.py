"""Servicers for parts of the v1 contract this version does not serve yet: every RPC answers
UNIMPLEMENTED with a message naming the RPC (instead of grpc's bare 'Method not implemented')."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bioverify.errors import NotImplementedYet


def unimplemented_servicer(base: type[Any], service: str, rpc_names: list[str]) -> Any:
    def make(rpc: str) -> Callable[..., Any]:
        def handler(self: Any, request: Any, context: Any) -> Any:
            raise NotImplementedYet(f"{service}.{rpc} is not available in this service version yet")

        return handler

    namespace = {name: make(name) for name in rpc_names}
    return type(f"Unimplemented{service}", (base,), namespace)()
