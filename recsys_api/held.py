"""A value the API reads from the serving database and holds for a few seconds per database.

Experiments and the buy_again blend weight change rarely but are needed on every list: a read
each time would double a list's round trips to the store. Held per database object, because a
process has one and the tests open one each.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

from pymongo.asynchronous.database import AsyncDatabase

T = TypeVar("T")


class Held(Generic[T]):
    """`await held.get(db)` answers what `read(db, last)` gave at most `ttl_seconds` ago; `last` is
    the value held before (None at first), for a read that keeps it when the store does not answer."""

    def __init__(self, read: Callable[[AsyncDatabase, T | None], Awaitable[T]], ttl_seconds: float) -> None:
        self._read, self.ttl_seconds = read, ttl_seconds
        self._held: dict[int, tuple[float, T]] = {}

    async def get(self, db: AsyncDatabase) -> T:
        key, now = id(db), time.monotonic()
        held = self._held.get(key)
        if held is None or now - held[0] > self.ttl_seconds:
            held = (now, await self._read(db, held[1] if held else None))
            self._held[key] = held
        return held[1]

    def forget(self, db: AsyncDatabase) -> None:
        """Read again next time (after this process changed the value)."""
        self._held.pop(id(db), None)
