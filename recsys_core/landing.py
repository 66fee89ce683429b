"""Where a Kafka record lands in the lake, and whether the sink keeps up with the topic.

The landing table (`events_landing`) and `raw_events` are partitioned by the same day, so that a
day of `raw_events` is rebuilt from that day's landed records alone: the day is the event's own
time when the record is an event the lake can place, else the record's arrival.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, date, datetime, time

from recsys_core.events import InvalidEvent, parse_event, parse_ts, placement_problem


def record_time(raw: object, kafka_time: datetime, first_day: date) -> datetime:
    """The time that places a record (parsed JSON, or None) in the lake's daily partitions.

    An event's canonical ts when it validates; else its own `ts` when readable and placeable (a
    rating with a bad score still belongs to the day it happened); else its arrival, and never
    before the lake's first day (a record no day holds would be lost).
    """
    try:
        return parse_ts(parse_event(raw, kafka_time, first_day=first_day, allow_internal=True)["ts"])
    except InvalidEvent:
        pass
    try:
        ts = parse_ts(raw.get("ts")) if isinstance(raw, dict) else kafka_time
    except InvalidEvent:
        ts = kafka_time
    if placement_problem(ts, kafka_time, first_day):
        ts = max(kafka_time, datetime.combine(first_day, time(), UTC))
    return ts


def landing_day(value: str | None, kafka_ts_ms: int, first_day: date) -> date:
    """The day partition of `events_landing` (and of `raw_events`) a record's value belongs to."""
    kafka_time = datetime.fromtimestamp(kafka_ts_ms / 1000, UTC)
    try:
        raw = json.loads(value) if value is not None else None
    except ValueError:
        raw = None
    return record_time(raw, kafka_time, first_day).date()


def records_behind(landed: Mapping[int, int], end: Mapping[int, int]) -> dict[int, int]:
    """Per Kafka partition, how many records the topic holds past what the sink has landed."""
    return {p: end[p] - landed.get(p, 0) for p in end if end[p] > landed.get(p, 0)}


def lag_minutes(oldest_waiting: Mapping[int, datetime], now: datetime) -> float:
    """How long the oldest record the sink has not landed yet has waited (0 when none waits)."""
    if not oldest_waiting:
        return 0.0
    return max(0.0, (now - min(oldest_waiting.values())).total_seconds() / 60)
