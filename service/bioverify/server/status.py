"""The one place where domain errors become gRPC status codes, as a server interceptor that also
writes one structured log line per RPC (method, request id, status, duration; never payloads)."""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import grpc
from google.protobuf.message import Message

from bioverify import errors
from bioverify.server.audit import NO_AUDIT, AuditTrail, CallRecord, audited, token_id
from bioverify.server.auth import bearer_digest
from bioverify.server.request_reads import RequestReads
from bioverify.server.token_calls import NO_LIMIT, CallsPerToken

logger = logging.getLogger("bioverify.rpc")

_STATUS: list[tuple[type[errors.BioverifyError], grpc.StatusCode]] = [
    (errors.InvalidInput, grpc.StatusCode.INVALID_ARGUMENT),
    (errors.TooLarge, grpc.StatusCode.RESOURCE_EXHAUSTED),
    (errors.Overloaded, grpc.StatusCode.RESOURCE_EXHAUSTED),
    (errors.NotEnrolled, grpc.StatusCode.NOT_FOUND),
    (errors.ModelMismatch, grpc.StatusCode.FAILED_PRECONDITION),
    (errors.ChallengeInvalid, grpc.StatusCode.FAILED_PRECONDITION),
    (errors.AlreadyExists, grpc.StatusCode.ALREADY_EXISTS),
    (errors.Unauthenticated, grpc.StatusCode.UNAUTHENTICATED),
    (errors.PermissionDenied, grpc.StatusCode.PERMISSION_DENIED),
    (errors.TemplateChanged, grpc.StatusCode.ABORTED),
    (errors.TemplateUnreadable, grpc.StatusCode.DATA_LOSS),
    (errors.Unavailable, grpc.StatusCode.UNAVAILABLE),
    (errors.NotImplementedYet, grpc.StatusCode.UNIMPLEMENTED),
    (errors.ConfigurationError, grpc.StatusCode.FAILED_PRECONDITION),
]

GENERIC_INTERNAL = "internal error; the request id is in the server log"


def status_for(error: errors.BioverifyError) -> grpc.StatusCode:
    for cls, code in _STATUS:
        if isinstance(error, cls):
            return code
    return grpc.StatusCode.INTERNAL


def _handle(exc: BaseException, context: grpc.ServicerContext, method: str, rid: str) -> None:
    if isinstance(exc, errors.BioverifyError):
        code = status_for(exc)
        context.set_trailing_metadata((("bioverify-reason", exc.reason),))
        context.abort(code, exc.message)
    logger.error("rpc %s request_id=%s failed", method, rid, exc_info=exc)
    context.abort(grpc.StatusCode.INTERNAL, f"{GENERIC_INTERNAL} ({rid})")


_REQUEST_ID = re.compile(r"[A-Za-z0-9._:/+-]{1,64}")


def _request_id(context: grpc.ServicerContext) -> str:
    """The client's ``x-request-id`` when it is a plain token (letters, digits, ``._:/+-``;
    at most 64), else a fresh one: a value with spaces or ``=`` would forge fields of the
    log line (``status=OK``, another ``peer=``)."""
    for key, value in context.invocation_metadata() or ():
        if key == "x-request-id" and isinstance(value, str) and _REQUEST_ID.fullmatch(value):
            return value
    return uuid.uuid4().hex[:16]


def _final_status(context: grpc.ServicerContext) -> str:
    """The status the call ended with: the one set on ``context`` (an abort), else OK."""
    code = context.code() if hasattr(context, "code") else None
    return str(getattr(code, "name", "OK")) if code is not None else "OK"


def _log(
    method: str, rid: str, context: grpc.ServicerContext, started: float, status: str = ""
) -> None:
    logger.info(
        "rpc method=%s request_id=%s status=%s duration_ms=%.1f peer=%s",
        method,
        rid,
        status or _final_status(context),
        (time.perf_counter() - started) * 1e3,
        context.peer(),
    )


class ErrorMappingInterceptor(grpc.ServerInterceptor):  # type: ignore[misc]
    def __init__(
        self,
        reads: RequestReads,
        calls: CallsPerToken = NO_LIMIT,
        audit: AuditTrail = NO_AUDIT,
    ) -> None:
        """Unary calls are served as request streams whose one message the handler reads
        under ``reads``' time limit (see ``request_reads``). Every call is admitted by
        ``calls`` (none: no limit per token) before anything else, and the calls of the
        audited services are written to ``audit`` when they end."""
        self._reads = reads
        self._calls = calls
        self._audit = audit

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler | None],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler | None:
        handler = continuation(handler_call_details)
        if handler is None:
            return None
        method = handler_call_details.method
        if method.startswith("/grpc.health."):
            return handler  # probed every few seconds: not logged, raises nothing of ours
        audit = self._audit if audited(method) else NO_AUDIT
        if handler.unary_unary is not None:
            return grpc.stream_unary_rpc_method_handler(
                _wrap_unary(handler.unary_unary, method, self._calls, audit, self._reads),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        if handler.stream_unary is not None:  # e.g. a call refused before its message
            return grpc.stream_unary_rpc_method_handler(
                _wrap_unary(handler.stream_unary, method, self._calls, audit),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        if handler.stream_stream is not None:
            return grpc.stream_stream_rpc_method_handler(
                _wrap_stream(handler.stream_stream, method, self._calls, audit),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        return handler


def _wrap_unary(
    fn: Callable[[Any, grpc.ServicerContext], Any],
    method: str,
    calls: CallsPerToken,
    audit: AuditTrail,
    reads: RequestReads | None = None,
) -> Callable[..., Any]:
    """``fn`` admitted by ``calls``, with its errors mapped and its call logged (and
    audited). With ``reads``, the call is served as a request stream and its one message is
    read here, within ``reads``' time limit; without, ``fn`` takes what gRPC gives (a request,
    or the stream of a refused call)."""
    needs_token = calls.counting or audit.enabled

    def wrapper(received: Any, context: grpc.ServicerContext) -> Any:
        rid = _request_id(context)
        started = time.perf_counter()
        logged = True
        ended = ""
        digest = bearer_digest(context.invocation_metadata()) if needs_token else None
        record = CallRecord(method, rid, token_id(digest))
        try:
            with calls.admitted(digest):
                request = received if reads is None else _read_request(received, context, reads)
                record.request = request
                record.response = fn(request, context)
                return record.response
        except Exception as exc:
            if _is_abort(exc):
                raise
            ended = _ended_by_client(context) if isinstance(exc, grpc.RpcError) else ""
            if ended:
                record.status = ended
                return None  # cancelled while its message was awaited: nobody to answer
            logged = not _unauthenticated(exc)
            record.failed(exc, _status_name(exc))
            _handle(exc, context, method, rid)
        finally:
            if logged:
                _log(method, rid, context, started, ended)
            _audit(audit, record, context, started)

    return wrapper


def _read_request(
    requests: Iterator[Any], context: grpc.ServicerContext, reads: RequestReads
) -> Any:
    with reads.awaiting(context):
        request = next(requests, None)
    if request is None:
        raise errors.InvalidInput("the call ended before its request message")
    return request


def _wrap_stream(
    fn: Callable[[Iterator[Any], grpc.ServicerContext], Iterator[Any]],
    method: str,
    calls: CallsPerToken,
    audit: AuditTrail,
) -> Callable[..., Iterator[Any]]:
    needs_token = calls.counting or audit.enabled

    def wrapper(requests: Iterator[Any], context: grpc.ServicerContext) -> Iterator[Any]:
        rid = _request_id(context)
        started = time.perf_counter()
        ended = ""  # how the client ended the call, when it did
        logged = True
        digest = bearer_digest(context.invocation_metadata()) if needs_token else None
        record = CallRecord(method, rid, token_id(digest))
        try:
            with calls.admitted(digest):
                kept = _first_kept(requests, record) if audit.enabled else requests
                responses = fn(kept, context)
                try:
                    for response in responses:
                        record.response = response
                        yield response
                finally:  # as ``yield from`` would: the handler ends with the call
                    close = getattr(responses, "close", None)
                    if close is not None:
                        close()
        except GeneratorExit:
            # gRPC closes the handler when the call ends while it works on a message.
            ended = record.status = _ended_by_client(context) or "CANCELLED"
            raise
        except Exception as exc:
            if _is_abort(exc):
                raise
            ended = _ended_by_client(context) if isinstance(exc, grpc.RpcError) else ""
            if ended:
                # Reading the next message failed because the call is over: the client
                # hung up or its deadline passed (or the idle watchdog cancelled it). Not a
                # fault of ours, and nobody is left to answer.
                record.status = ended
                return
            logged = not _unauthenticated(exc)
            record.failed(exc, _status_name(exc))
            _handle(exc, context, method, rid)
        finally:
            if logged:
                _log(method, rid, context, started, ended)
            _audit(audit, record, context, started)

    return wrapper


def _first_kept(requests: Iterator[Any], record: CallRecord) -> Iterator[Any]:
    """``requests``, the first of them kept in ``record`` (a stream's config)."""
    for request in requests:
        if record.request is None:
            record.request = request
        yield request


def _status_name(exc: BaseException) -> str:
    if isinstance(exc, errors.BioverifyError):
        return str(status_for(exc).name)
    return str(grpc.StatusCode.INTERNAL.name)


def _audit(
    audit: AuditTrail, record: CallRecord, context: grpc.ServicerContext, started: float
) -> None:
    """The call's audit line (``audit`` is the method's: none for a service not audited),
    when its request was read (a call refused before, e.g. without a token, is in the service
    log only)."""
    if not audit.enabled or not isinstance(record.request, Message):
        return  # not a message: a refused call's unread stream
    try:
        if record.status == "OK":  # the servicer may have aborted the call itself
            record.status = _final_status(context)
        audit.record(record.entry((time.perf_counter() - started) * 1e3, context.peer()))
    except Exception:  # the call's answer stands
        logger.exception("could not make the audit line of a %s call", record.method)


DEADLINE_SLACK_S = 1.0
"""The server counts a deadline from when the call reached it, the client from when it sent
it, so the client's deadline passes first, and its cancel can arrive while the server's clock
still shows time left (more of it on a loaded machine): a call ended with less than this left
is taken as ended by its deadline."""


def _ended_by_client(context: grpc.ServicerContext) -> str:
    """``"DEADLINE_EXCEEDED"`` or ``"CANCELLED"`` when the call is over, else ``""``."""
    if context.is_active():
        return ""
    remaining = context.time_remaining()
    past = remaining is not None and remaining <= DEADLINE_SLACK_S
    return "DEADLINE_EXCEEDED" if past else "CANCELLED"


def _unauthenticated(exc: BaseException) -> bool:
    """A call refused for want of a valid token: ``auth.RefusalLog`` logs those, at most one
    line per period, so that a flood of them is not a flood of RPC log lines too."""
    return isinstance(exc, errors.Unauthenticated)


def _is_abort(exc: BaseException) -> bool:
    # grpc's context.abort raises a plain Exception after setting the status on the context.
    return type(exc) is Exception and not exc.args
