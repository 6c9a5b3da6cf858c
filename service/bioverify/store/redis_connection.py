"""What every Redis adapter shares: the client built from ``REDIS_URL``, key escaping, and the
translation of Redis outages into the domain's ``Unavailable``.

Redis refusing the credentials (a wrong password or user in ``REDIS_URL``) is no outage: at
startup it is a ``ConfigurationError`` (``CREDENTIALS_REFUSED``, see
``RedisTemplateStore.ping``); later (a password changed on the server meanwhile) calls fail
``Unavailable`` as in an outage, and the log says the credentials were refused."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterator
from contextlib import contextmanager

import redis
from redis.backoff import ExponentialWithJitterBackoff
from redis.retry import Retry

from bioverify.errors import ConfigurationError, Unavailable

OUTAGE_LOG_EVERY_S = 30.0
CREDENTIALS_REFUSED = (
    "Redis refused the credentials: check the password (and the user, if any) in redis_url"
)

# Errors that mean "Redis cannot serve right now" rather than a bug.
UNAVAILABLE_ERRORS: tuple[type[Exception], ...] = (
    redis.exceptions.ConnectionError,  # includes BusyLoadingError (AuthenticationError: above)
    redis.exceptions.TimeoutError,
    redis.exceptions.ReadOnlyError,
    redis.exceptions.MasterDownError,
    redis.exceptions.TryAgainError,
    redis.exceptions.OutOfMemoryError,
)


def connect(
    url: str,
    *,
    socket_timeout: float = 2.0,
    connect_timeout: float | None = None,
    retries: int = 2,
    max_connections: int = 64,
) -> redis.Redis:
    """A thread-safe client of ``url`` (redis://, rediss://, unix://) that reconnects by itself
    and retries a failed command ``retries`` times with a short jittered backoff."""
    if socket_timeout <= 0:
        raise ConfigurationError("the Redis socket timeout must be positive")
    try:
        return redis.Redis.from_url(
            url,
            socket_timeout=socket_timeout,
            socket_connect_timeout=connect_timeout or socket_timeout,
            retry=Retry(ExponentialWithJitterBackoff(base=0.02, cap=0.25), retries),
            max_connections=max_connections,
            decode_responses=False,
        )
    except ValueError:
        # The message of redis-py may echo the URL, which may hold a password.
        raise ConfigurationError(
            "redis_url is not a valid Redis URL (redis://, rediss:// or unix://)"
        ) from None


def key_part(part: str) -> str:
    """``part`` escaped so that ``:`` stays a separator of the key's parts."""
    return part.replace("%", "%25").replace(":", "%3A")


def unescape_key_part(part: str) -> str:
    """The ``part`` that ``key_part`` escaped."""
    return part.replace("%3A", ":").replace("%25", "%")


class RedisErrors:
    """Turns Redis outages into ``Unavailable`` with a message free of hosts and credentials,
    logging them at WARNING at most every 30 s (an outage fails every call)."""

    def __init__(self, what: str, log: logging.Logger) -> None:
        """``what`` names the store in messages, e.g. "the template store (Redis)"; ``log``
        is the adapter's logger."""
        self.what = what
        self._log = log
        self.unreachable = f"{what} is unreachable; retry later"
        self._outage_logged_at = -math.inf  # monotonic time of the last outage WARNING

    def _log_outage(self, message: str, *args: object) -> None:
        """``message`` at WARNING at most every 30 s, at DEBUG in between."""
        now = time.monotonic()
        loud = now - self._outage_logged_at >= OUTAGE_LOG_EVERY_S
        if loud:
            self._outage_logged_at = now
        self._log.log(logging.WARNING if loud else logging.DEBUG, message, *args)

    @contextmanager
    def translate(self) -> Iterator[None]:
        try:
            yield
        except redis.exceptions.AuthenticationError as exc:  # a ConnectionError: first
            self._log_outage("%s unavailable: %s", self.what, CREDENTIALS_REFUSED)
            raise Unavailable(self.unreachable) from exc
        except UNAVAILABLE_ERRORS as exc:
            self._log_outage("%s unavailable: %s", self.what, type(exc).__name__)
            raise Unavailable(self.unreachable) from exc
        except redis.exceptions.ResponseError as exc:
            if str(exc).startswith(("MISCONF", "LOADING", "MASTERDOWN", "TRYAGAIN")):
                self._log.warning("%s refuses writes: %s", self.what, str(exc)[:80])
                raise Unavailable(self.unreachable) from exc
            raise
