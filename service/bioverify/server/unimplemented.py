"""Servicers for parts of the v1 contract this installation does not serve (e.g. voice with no
voice pack): every RPC answers UNIMPLEMENTED with a message naming the RPC and the reason
(instead of grpc's bare 'Method not implemented')."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bioverify.errors import NotImplementedYet


def unimplemented_servicer(base: type[Any], service: str, rpc_names: list[str], why: str) -> Any:
    def make(rpc: str) -> Callable[..., Any]:
        def handler(self: Any, request: Any, context: Any) -> Any:
            raise NotImplementedYet(f"{service}.{rpc} is not served: {why}")

        return handler

    namespace = {name: make(name) for name in rpc_names}
    return type(f"Unimplemented{service}", (base,), namespace)()
