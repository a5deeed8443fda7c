"""A bound on how many requests to a hosted API are in flight at once, across worker processes.

Why not a semaphore in the client: a job sends its requests one after another from one worker
process, and the GPU queue's workers run one task each, so a bound inside one process would
never bind. What needs bounding is the sum over every process that may run an image-api job at
the same time: several worker hosts, and the shards of one job spread over them. So the slots
live where every worker sees them: in Redis (`RedisSlots`, the project's broker, shared by all
hosts) or, without Redis, in lock files on this host (`FileSlots`, for single-host setups on
the file-system broker).

A slot is held from just before a request is sent until its reply has been read. A process
that dies holding one gives it back: a Redis slot is a lease that expires after `lease_s`
(longer than any request may last), a file lock is released by the kernel.

Pure Python (redis-py, fcntl); no Django here.
"""

from __future__ import annotations

import fcntl
import os
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

from generation.engine.cancellation import cancel_requested

# KEYS[1]: the slot set (member: a holder's token, score: when its lease ends, in Redis time).
# ARGV: limit, lease in seconds, token. Redis' own clock, so hosts' clocks need not agree.
_ACQUIRE = """
local now = redis.call('TIME')
local t = tonumber(now[1]) + tonumber(now[2]) / 1000000
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', t)
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[1]) then
  redis.call('ZADD', KEYS[1], t + tonumber(ARGV[2]), ARGV[3])
  redis.call('PEXPIRE', KEYS[1], math.ceil(tonumber(ARGV[2]) * 1000))
  return 1
end
return 0
"""


class InFlightError(Exception):
    """The slots cannot be reached (Redis down, lock folder not writable)."""


class InFlightCancelled(Exception):
    """`cancel` fired while waiting for a free slot."""


class InFlightLimit(Protocol):
    limit: int

    def slot(self, cancel: Any = None) -> Any:
        """A context manager holding one slot; waits for a free one (checking `cancel`)."""
        ...


def _wait(cancel: Any, sleep: Callable[[float], Any], poll_s: float) -> None:
    if cancel_requested(cancel):
        raise InFlightCancelled("cancelled while waiting for a free request slot")
    sleep(poll_s)


class RedisSlots:
    """At most `limit` holders of `name` at once, for every process using the same Redis."""

    def __init__(
        self,
        url: str,
        name: str,
        limit: int,
        *,
        lease_s: float,
        poll_s: float = 0.05,
        sleep: Callable[[float], Any] = time.sleep,
    ):
        import redis

        if limit < 1:
            raise ValueError("the in-flight limit must be at least 1")
        self.limit, self.key, self.lease_s = int(limit), name, float(lease_s)
        self._poll_s, self._sleep = poll_s, sleep
        self._errors = (redis.RedisError, OSError)
        self._client = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)
        self._acquire = self._client.register_script(_ACQUIRE)

    def _try(self, token: str) -> bool:
        try:
            return bool(self._acquire(keys=[self.key], args=[self.limit, self.lease_s, token]))
        except self._errors as error:
            raise InFlightError(f"the request-slot store (Redis) is unreachable: {error}") from None

    @contextmanager
    def slot(self, cancel: Any = None) -> Iterator[None]:
        token = uuid.uuid4().hex
        while not self._try(token):
            _wait(cancel, self._sleep, self._poll_s)
        try:
            yield
        finally:
            try:
                self._client.zrem(self.key, token)
            except self._errors:
                pass  # the lease runs out by itself

    def holders(self) -> int:
        """How many slots are held now (expired leases not counted)."""
        now = self._client.time()
        return int(self._client.zcount(self.key, now[0] + now[1] / 1e6, "+inf"))


class FileSlots:
    """At most `limit` holders at once among the processes of this host: one lock file per slot
    in `folder` (flock locks belong to an open file, so threads of one process count too)."""

    def __init__(
        self,
        folder: str | os.PathLike,
        limit: int,
        *,
        poll_s: float = 0.05,
        sleep: Callable[[float], Any] = time.sleep,
    ):
        if limit < 1:
            raise ValueError("the in-flight limit must be at least 1")
        self.limit, self.folder = int(limit), Path(folder)
        self._poll_s, self._sleep = poll_s, sleep

    def _try(self) -> int | None:
        """The open, locked file of a free slot, or None when all are taken."""
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            for index in range(self.limit):
                fd = os.open(self.folder / f"slot-{index}", os.O_RDWR | os.O_CREAT, 0o600)
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    os.close(fd)
                    continue
                return fd
        except OSError as error:
            raise InFlightError(
                f"cannot use the request-slot folder {self.folder}: {error}"
            ) from None
        return None

    @contextmanager
    def slot(self, cancel: Any = None) -> Iterator[None]:
        while (fd := self._try()) is None:
            _wait(cancel, self._sleep, self._poll_s)
        try:
            yield
        finally:
            os.close(fd)  # closing the file releases its lock
