"""Waiting out a server that is down: retry with capped exponential backoff, saying so in the log."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TypeVar

from kafka.errors import KafkaError
from pymongo.errors import PyMongoError

from recsys_core.errors import ServerUnavailable

log = logging.getLogger("recsys.stream")
T = TypeVar("T")

# What a server being down or restarting looks like; anything else is a bug and must surface.
TRANSIENT = (PyMongoError, KafkaError, ServerUnavailable, ConnectionError, TimeoutError)
FIRST_DELAY = 0.5
MAX_DELAY = 30.0


class StopRequested(Exception):
    """The job is shutting down; the current micro-batch is abandoned and replays on restart."""


def with_backoff(
    action: Callable[[], T], what: str, stopping: threading.Event | None = None, give_up_after: float | None = None
) -> T:
    """Run `action` until it succeeds; a transient failure waits 0.5 s, 1 s, 2 s ... 30 s and retries.

    The micro-batch is only committed once every task returned, so waiting is what keeps a Mongo
    or Kafka outage from dropping events. A shutdown request (`stopping`) ends the wait; so does
    `give_up_after` seconds of failures, re-raising the last one: a Spark task then fails, and
    Spark runs it again or the query restarts from its checkpoint, the batch still uncommitted.
    """
    delay = FIRST_DELAY
    failures = 0
    deadline = None if give_up_after is None else time.monotonic() + give_up_after
    stopping = stopping or threading.Event()
    while True:
        try:
            result = action()
        except TRANSIENT as error:
            failures += 1
            if deadline is not None and time.monotonic() + delay > deadline:
                raise
            log.warning(
                "%s failed (%s: %s); retrying in %.1fs (attempt %d)", what, type(error).__name__, error, delay, failures
            )
            if stopping.wait(delay):
                raise StopRequested(what) from error
            delay = min(delay * 2, MAX_DELAY)
            continue
        if failures:
            log.info("%s succeeded after %d failed attempts", what, failures)
        return result
