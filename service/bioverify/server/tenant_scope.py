"""Tenants as an authorisation boundary: an API token may be confined to some tenants, and every
request naming a tenant is checked against the calling token's before any servicer sees it.

The check reads the tenants a request names from its protobuf descriptor, not from a list of
RPCs: every string field called ``tenant``, at any depth (``VoiceStreamRequest.config.tenant``
included), on every message of a request stream. An RPC added later with a tenant is covered
without being named here. A ``tenant`` left empty means the default tenant, as in the use
cases (``validate_tenant``).

``TokenAuthInterceptor`` wraps the handler of each call made with a confined token
(``confine``); the wrapper runs in the call's own thread, before the servicer for a unary
request and as the servicer reads each message of a stream, and raises ``TenantNotAllowed``,
which ``ErrorMappingInterceptor`` (outside it) answers PERMISSION_DENIED. The scope travels in
the wrapper's closure, so nothing is shared between calls or threads.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

from bioverify.errors import TenantNotAllowed
from bioverify.usecases.common import validate_tenant

logger = logging.getLogger(__name__)

TENANT_FIELD = "tenant"


@dataclass(frozen=True)
class TenantScope:
    """The tenants a token may act on; ``tenants=None``: every tenant."""

    tenants: frozenset[str] | None = None

    @property
    def unrestricted(self) -> bool:
        return self.tenants is None

    def allows(self, tenant: str) -> bool:
        return self.tenants is None or tenant in self.tenants

    def describe(self) -> str:
        return "*" if self.tenants is None else ",".join(sorted(self.tenants))


ALL_TENANTS = TenantScope()


def _is_tenant(field: FieldDescriptor) -> bool:
    return bool(
        field.name == TENANT_FIELD
        and field.type == FieldDescriptor.TYPE_STRING
        and not field.is_repeated
    )


@functools.cache
def _leads_to_tenant(descriptor: Descriptor) -> bool:
    return _reaches_tenant(descriptor, frozenset())


def _reaches_tenant(descriptor: Descriptor, seen: frozenset[str]) -> bool:
    if descriptor.full_name in seen:
        return False
    seen = seen | {descriptor.full_name}
    return any(
        _is_tenant(f) or (f.message_type is not None and _reaches_tenant(f.message_type, seen))
        for f in descriptor.fields
    )


@functools.cache
def _tenant_paths(descriptor: Descriptor) -> tuple[FieldDescriptor, ...]:
    """The fields of ``descriptor`` that are a tenant or lead to one."""
    return tuple(
        f
        for f in descriptor.fields
        if _is_tenant(f) or (f.message_type is not None and _leads_to_tenant(f.message_type))
    )


def request_tenants(message: Message) -> Iterator[str]:
    """Every tenant ``message`` names, normalised (empty: the default tenant). A sub-message in
    a oneof counts only when it is the one set (a stream's audio chunk names no tenant); any
    other sub-message counts set or not, as a servicer reading it would get its empty tenant."""
    for field in _tenant_paths(message.DESCRIPTOR):
        if _is_tenant(field):
            yield validate_tenant(getattr(message, field.name))
            continue
        value = getattr(message, field.name)
        if field.is_repeated:
            items: Iterable[Any] = (
                value.values() if field.message_type.GetOptions().map_entry else value
            )
            for item in items:
                if isinstance(item, Message):
                    yield from request_tenants(item)
        elif field.containing_oneof is None or message.HasField(field.name):
            yield from request_tenants(value)


def check_request(scope: TenantScope, request: Any, method: str) -> None:
    """TenantNotAllowed unless ``scope`` allows every tenant ``request`` names. The message
    names the tenant asked for, never the token's: it tells nothing about which tenants exist."""
    if not isinstance(request, Message):  # no descriptor to read: refuse, never guess
        logger.warning("rejected a call to %s: its request cannot be read", method)
        raise TenantNotAllowed("this API token may not make this call")
    for tenant in request_tenants(request):
        if not scope.allows(tenant):
            logger.warning(
                "rejected a call to %s: its API token may not act on tenant %r", method, tenant
            )
            raise TenantNotAllowed(f"this API token may not act on tenant {tenant!r}")


def confine(handler: grpc.RpcMethodHandler, method: str, scope: TenantScope) -> Any:
    """``handler`` with every request checked against ``scope`` first."""
    if scope.unrestricted:
        return handler

    def check(request: Any) -> Any:
        check_request(scope, request, method)
        return request

    def checked(requests: Iterator[Any]) -> Iterator[Any]:
        for request in requests:
            yield check(request)

    def unary_request(fn: Callable[..., Any]) -> Callable[..., Any]:
        return lambda request, context: fn(check(request), context)

    def stream_request(fn: Callable[..., Any]) -> Callable[..., Any]:
        return lambda requests, context: fn(checked(requests), context)

    codec = {
        "request_deserializer": handler.request_deserializer,
        "response_serializer": handler.response_serializer,
    }
    if handler.unary_unary is not None:
        return grpc.unary_unary_rpc_method_handler(unary_request(handler.unary_unary), **codec)
    if handler.unary_stream is not None:
        return grpc.unary_stream_rpc_method_handler(unary_request(handler.unary_stream), **codec)
    if handler.stream_unary is not None:
        return grpc.stream_unary_rpc_method_handler(stream_request(handler.stream_unary), **codec)
    return grpc.stream_stream_rpc_method_handler(stream_request(handler.stream_stream), **codec)
