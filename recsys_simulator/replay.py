"""Reading clickstream files for replay: one JSON event per line, stamped with the time of sending.

Lines are in the clickstream format `{"event": "ProductView", "messageid", "userid",
"properties": {"productid"}, "context": {"source"}}` (the platform's own event format is accepted
too). Any timestamp in the file is replaced by `clock()`: a replay plays old traffic as live traffic.
Bad lines are reported with their number and the reason and never stop the replay.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from recsys_core.events import FieldError, InvalidEvent, parse_event

_TIMESTAMP_FIELDS = ("timestamp", "ts")


@dataclass(frozen=True)
class ReplayLine:
    number: int
    event: dict[str, Any] | None = None
    reason: str | None = None  # why the line is skipped, when event is None


def parse_line(text: str, now: datetime, first_day: date) -> dict[str, Any]:
    """One line -> canonical event at `now` (validated against the lake's `first_day`); InvalidEvent says why not."""
    try:
        raw = json.loads(text)
    except ValueError as error:
        raise InvalidEvent([FieldError("", f"not valid JSON ({error})")]) from None
    if isinstance(raw, dict):
        raw = {k: v for k, v in raw.items() if k not in _TIMESTAMP_FIELDS}
    return parse_event(raw, now, first_day=first_day)


def describe(error: InvalidEvent) -> str:
    return "; ".join(f"{e.field}: {e.reason}" if e.field else e.reason for e in error.errors)


def read_clickstream(lines: Iterable[str], clock: Callable[[], datetime], first_day: date) -> Iterator[ReplayLine]:
    """Each non-blank line, numbered from 1, as an event or a reason; `clock` is read per line, lazily."""
    for number, text in enumerate(lines, start=1):
        if not text.strip():
            continue
        try:
            yield ReplayLine(number, event=parse_line(text, clock(), first_day))
        except InvalidEvent as error:
            yield ReplayLine(number, reason=describe(error))
