"""API-token authentication and TLS credentials for the server.

Clients send ``authorization: Bearer <token>``. The service keeps only SHA-256 digests of the
accepted tokens (one hex digest per line in ``BIOVERIFY_AUTH_TOKENS_FILE``; ``#`` comments
allowed), compares them in constant time, and answers UNAUTHENTICATED otherwise. Health
checking stays open so load balancers can probe without a token.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc

from bioverify.errors import ConfigurationError

logger = logging.getLogger(__name__)

OPEN_PREFIXES = ("/grpc.health.v1.Health/",)


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def load_token_digests(path: Path) -> frozenset[str]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise ConfigurationError(
            f"cannot read the auth tokens file {path}: {exc.strerror}"
        ) from exc
    digests = set()
    for number, line in enumerate(lines, start=1):
        entry = line.split("#", 1)[0].strip().lower()
        if not entry:
            continue
        if len(entry) != 64 or any(c not in "0123456789abcdef" for c in entry):
            raise ConfigurationError(
                f"{path}:{number}: expected the SHA-256 hex digest of a token "
                "(bioverify-admin token-digest TOKEN prints it)"
            )
        digests.add(entry)
    if not digests:
        raise ConfigurationError(f"{path} holds no token digests")
    return frozenset(digests)


class TokenAuthInterceptor(grpc.ServerInterceptor):  # type: ignore[misc]
    def __init__(self, digests: frozenset[str]) -> None:
        self._digests = digests

    def _allowed(self, metadata: tuple[Any, ...] | None) -> bool:
        for key, value in metadata or ():
            if key == "authorization" and isinstance(value, str) and value.startswith("Bearer "):
                digest = token_digest(value[len("Bearer ") :].strip())
                return any(hmac.compare_digest(digest, d) for d in self._digests)
        return False

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler | None],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler | None:
        method = handler_call_details.method
        if method.startswith(OPEN_PREFIXES) or self._allowed(
            handler_call_details.invocation_metadata
        ):
            return continuation(handler_call_details)
        logger.warning("rejected a call to %s without a valid API token", method)

        def deny(request: Any, context: grpc.ServicerContext) -> Any:
            context.abort(
                grpc.StatusCode.UNAUTHENTICATED,
                "missing or invalid API token: send 'authorization: Bearer <token>'",
            )

        handler = continuation(handler_call_details)
        if handler is not None and handler.stream_stream is not None:

            def deny_stream(requests: Any, context: grpc.ServicerContext) -> Any:
                deny(None, context)

            return grpc.stream_stream_rpc_method_handler(deny_stream)
        return grpc.unary_unary_rpc_method_handler(deny)


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
