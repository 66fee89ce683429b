"""Waiting out a server that is down: retry with capped exponential backoff, saying so in the log."""

from __future__ import annotations

import logging
import threading
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


def with_backoff(action: Callable[[], T], what: str, stopping: threading.Event) -> T:
    """Run `action` until it succeeds; a transient failure waits 0.5 s, 1 s, 2 s ... 30 s and retries.

    Never gives up by itself: the micro-batch is only committed when this returns, so waiting is
    what keeps a Mongo or Kafka outage from dropping events. A shutdown request ends the wait.
    """
    delay = FIRST_DELAY
    failures = 0
    while True:
        try:
            result = action()
        except TRANSIENT as error:
            failures += 1
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
