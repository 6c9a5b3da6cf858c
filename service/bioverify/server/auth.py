"""API-token authentication, tenant scopes, and TLS credentials for the server.

Clients send ``authorization: Bearer <token>``. The service keeps only SHA-256 digests of the
accepted tokens, one per line in ``BIOVERIFY_AUTH_TOKENS_FILE`` (``#`` comments allowed),
compares them in constant time, and answers UNAUTHENTICATED otherwise. Health checking stays
open so load balancers can probe without a token.

A digest may be followed (after white space) by the tenants its token may act on, separated
by commas, or ``*`` for every tenant; a digest alone (the format of earlier versions) means
every tenant. ``default`` names the default tenant (a request's empty ``tenant``)::

    # ops: everything
    3c9d...e1  *
    # the cards unit's backend
    8f21...07  cards,cards-test

A request naming a tenant its token may not act on is answered PERMISSION_DENIED
(``bioverify.server.tenant_scope``).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import math
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import grpc

from bioverify.errors import ConfigurationError, InvalidInput, Unauthenticated
from bioverify.server.tenant_scope import ALL_TENANTS, TenantScope, confine
from bioverify.usecases.common import validate_tenant

logger = logging.getLogger(__name__)

OPEN_PREFIXES = ("/grpc.health.v1.Health/",)


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def bearer_digest(metadata: Iterable[Any] | None) -> str | None:
    """The digest of the call's ``authorization: Bearer`` token; None when it sent none."""
    for key, value in metadata or ():
        if key == "authorization" and isinstance(value, str) and value.startswith("Bearer "):
            return token_digest(value[len("Bearer ") :].strip())
    return None


def load_tokens(path: Path) -> dict[str, TenantScope]:
    """The tokens file: each token's SHA-256 hex digest and the tenants it may act on."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise ConfigurationError(
            f"cannot read the auth tokens file {path}: {exc.strerror}"
        ) from exc
    tokens: dict[str, TenantScope] = {}
    for number, line in enumerate(lines, start=1):
        entry = line.split("#", 1)[0].strip()
        if not entry:
            continue
        digest, _, tenants = entry.replace("\t", " ").partition(" ")
        digest = digest.lower()
        if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
            raise ConfigurationError(
                f"{path}:{number}: expected the SHA-256 hex digest of a token, then optionally "
                "its tenants (bioverify-admin token-digest TOKEN prints it)"
            )
        try:
            scope = _parse_scope(tenants)
        except ConfigurationError as exc:
            raise ConfigurationError(f"{path}:{number}: {exc.message}") from exc
        if tokens.get(digest, scope) != scope:
            raise ConfigurationError(
                f"{path}:{number}: this token is listed earlier with other tenants; list it once"
            )
        tokens[digest] = scope
    if not tokens:
        raise ConfigurationError(f"{path} holds no token digests")
    return tokens


def tokens_file_line(token: str, tenants: str = "") -> str:
    """The tokens-file line of ``token`` acting on ``tenants`` (names separated by commas,
    ``*`` or empty: every tenant); ConfigurationError for a bad tenant list."""
    scope = _parse_scope(tenants)
    digest = token_digest(token)
    return digest if tenants.strip() == "" else f"{digest}  {scope.describe()}"


def _parse_scope(text: str) -> TenantScope:
    """``TenantScope`` of a tokens-file line's tenants: none or ``*`` for all, else names."""
    text = text.strip()
    if not text or text == "*":
        return ALL_TENANTS
    names = [name.strip() for name in text.split(",")]
    for name in names:
        if name == "*":
            raise ConfigurationError("'*' (every tenant) goes alone, without names")
        if not name:
            raise ConfigurationError("an empty tenant name (a stray comma?)")
        try:
            validate_tenant(name)
        except InvalidInput as exc:
            raise ConfigurationError(
                f"expected tenant names separated by commas, or '*': {exc.message}"
            ) from exc
    return TenantScope(frozenset(names))


class RefusalLog:
    """Logs calls refused for want of a valid token: the first at once, then at most one
    line per ``period_s`` counting the others, so a flood of refused calls cannot flood the
    log too."""

    def __init__(self, clock: Callable[[], float], period_s: float = 10.0) -> None:
        self._clock = clock
        self._period_s = period_s
        self._lock = threading.Lock()
        self._last = -math.inf
        self._held = 0

    def note(self, method: str) -> None:
        with self._lock:
            now = self._clock()
            if now - self._last < self._period_s:
                self._held += 1
                return
            held, self._held, self._last = self._held, 0, now
        if held:
            logger.warning(
                "rejected a call to %s without a valid API token (and %d more such calls "
                "in the last %.0f s)",
                method,
                held,
                self._period_s,
            )
        else:
            logger.warning("rejected a call to %s without a valid API token", method)


class TokenAuthInterceptor(grpc.ServerInterceptor):  # type: ignore[misc]
    """Authenticates each call by its token, and confines it to the token's tenants. Must run
    inside ``ErrorMappingInterceptor`` (after it in the server's list), which answers the
    domain error a confined call raises."""

    def __init__(self, tokens: Mapping[str, TenantScope]) -> None:
        self._tokens = dict(tokens)
        self._refusals = RefusalLog(time.monotonic)

    def _scope(self, metadata: tuple[Any, ...] | None) -> TenantScope | None:
        """The calling token's scope; None when it sent no valid token."""
        digest = bearer_digest(metadata)
        if digest is None:
            return None
        found = None
        for known, scope in self._tokens.items():  # no early exit: constant time
            if hmac.compare_digest(digest, known):
                found = scope
        return found

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler | None],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler | None:
        method = handler_call_details.method
        if method.startswith(OPEN_PREFIXES):
            return continuation(handler_call_details)
        scope = self._scope(handler_call_details.invocation_metadata)
        if scope is not None:
            handler = continuation(handler_call_details)
            return handler if handler is None else confine(handler, method, scope)
        self._refusals.note(method)

        def deny(requests: Any, context: grpc.ServicerContext) -> Any:
            # Never reads ``requests``: the call is refused as soon as its headers arrive, so
            # a client holding calls open without sending their message cannot keep the
            # service's RPC slots (a unary handler would wait for the message first).
            # Answered by ErrorMappingInterceptor, with the reason trailer (UNAUTHENTICATED).
            raise Unauthenticated(
                "missing or invalid API token: send 'authorization: Bearer <token>'"
            )

        handler = continuation(handler_call_details)
        if handler is not None and handler.response_streaming:
            return grpc.stream_stream_rpc_method_handler(deny)
        return grpc.stream_unary_rpc_method_handler(deny)


def server_credentials(cert_file: Path, key_file: Path, client_ca_file: Path | None) -> Any:
    """TLS for the listening port; with a client CA, clients must present a certificate."""
    try:
        cert = cert_file.read_bytes()
        key = key_file.read_bytes()
        ca = client_ca_file.read_bytes() if client_ca_file else None
    except OSError as exc:
        raise ConfigurationError(f"cannot read a TLS file: {exc.filename}: {exc.strerror}") from exc
    return grpc.ssl_server_credentials(
        [(key, cert)], root_certificates=ca, require_client_auth=ca is not None
    )
