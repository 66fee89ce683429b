"""The domain's rules as Spark's Python workers run them: validating raw Kafka records, the
interaction strengths of each shopper.

Kept free of Dagster and Spark imports: workers unpickle this module by reference, and a worker's
interpreter needs nothing beyond recsys_core to run it.
"""

from __future__ import annotations

import itertools
import json
import operator
import uuid
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, date, datetime, timedelta

from recsys_core.attribution import AttributedLine, attributed_purchases
from recsys_core.events import InvalidEvent, parse_event, parse_ts
from recsys_core.interactions import interaction_strengths
from recsys_core.landing import record_time

EVENT_COLUMNS = (
    "event_id string, type string, user_id string, ts_ms long, product_id string, source string, "
    "quantity int, score double, order_id string, "
    "items array<struct<product_id:string,quantity:int,price:double>>, "
    # A click's list; an impression's list and how it was made (recsys_core.events).
    "rec_id string, surface string, strategy string, model_version string, experiment string, variant string, "
    "products array<string>"
)
LIST_FIELDS = ("rec_id", "surface", "strategy", "model_version", "experiment", "variant", "products")
NO_EVENT = (None,) * (10 + len(LIST_FIELDS))  # the event columns of an invalid record
RECORD_SCHEMA = (
    "valid boolean, day_ms long, kafka_partition int, kafka_offset long, kafka_ts_ms long, "
    "value string, reason string, " + EVENT_COLUMNS
)
# The rows shopper_strengths writes: the `interactions` table.
STRENGTH_SCHEMA = "user_id string, product_id string, strength double, last_ts timestamp, events long"
# The rows shopper_attributions writes: the `attributed_orders` table.
ATTRIBUTED_SCHEMA = (
    "user_id string, order_id string, product_id string, quantity int, price double, "
    "purchased_at timestamp, rec_id string, clicked_at timestamp, day date"
)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _ms(ts: datetime) -> int:
    return int(ts.timestamp() * 1000)


def validate_records(rows: Iterable, first_day: date) -> Iterator[tuple]:
    """Landed Kafka rows -> (valid, day, ..., event columns), against the lake's `first_day`; runs on the executors.

    A record's day is recsys_core.landing's, the day it landed in: a day's records validate into that day.
    """
    for row in rows:
        kafka_time = datetime.fromtimestamp(row.kafka_ts_ms / 1000, UTC)
        base = (row.partition, row.offset, row.kafka_ts_ms, row.value)
        try:
            raw = json.loads(row.value) if row.value is not None else None
        except ValueError as error:
            day_ms = _ms(record_time(None, kafka_time, first_day))
            yield (False, day_ms, *base, f"value: not JSON ({error})") + NO_EVENT
            continue
        if isinstance(raw, dict) and raw.get("event_id") is None:
            # parse_event would draw a random id: derive one from the record so re-runs agree.
            raw = {**raw, "event_id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{row.topic}:{row.partition}:{row.offset}"))}
        try:
            event = parse_event(raw, kafka_time, first_day=first_day, allow_internal=True)
        except InvalidEvent as error:
            reason = "; ".join(f"{e.field}: {e.reason}" for e in error.errors)
            yield (False, _ms(record_time(raw, kafka_time, first_day)), *base, reason) + NO_EVENT
            continue
        ts_ms = _ms(parse_ts(event["ts"]))
        items = [(i["product_id"], i["quantity"], i["price"]) for i in event.get("items", [])] or None
        yield (
            True,
            ts_ms,
            *base,
            None,
            event["event_id"],
            event["type"],
            event["user_id"],
            ts_ms,
            event.get("product_id"),
            event.get("source"),
            event.get("quantity"),
            event.get("score"),
            event.get("order_id"),
            items,
            *(event.get(name) for name in LIST_FIELDS),
        )


def shopper_strengths(
    rows: Iterable, as_of: datetime, weights: Mapping[str, float], half_life_days: float | None
) -> Iterator[tuple]:
    """raw_events rows sorted by user_id -> `interactions` rows; runs on the executors.

    A row has user_id, type, ts_us (microseconds: a Spark timestamp would reach Python as a naive
    local time), product_id, score and item_ids (a purchase's products). recsys_core.interactions
    is applied to one shopper's events at a time: they are all a pair's strength depends on.
    """
    for _, group in itertools.groupby(rows, key=operator.attrgetter("user_id")):
        events = [
            {
                "type": row.type,
                "user_id": row.user_id,
                "ts": EPOCH + timedelta(microseconds=row.ts_us),
                "product_id": row.product_id,
                "score": row.score,
                "items": [{"product_id": product_id} for product_id in row.item_ids or ()],
            }
            for row in group
        ]
        for (user_id, product_id), pair in interaction_strengths(events, as_of, weights, half_life_days).items():
            yield user_id, product_id, pair.strength, pair.last_ts, pair.events


def attributed_row(line: AttributedLine) -> tuple:
    """An attributed line as a row of `attributed_orders` (its schema's column order)."""
    return (
        line.user_id,
        line.order_id,
        line.product_id,
        line.quantity,
        line.price,
        line.purchased_at,
        line.rec_id,
        line.clicked_at,
        line.purchased_at.date(),
    )


def shopper_attributions(rows: Iterable, window: timedelta) -> Iterator[tuple]:
    """Clicks and purchases sorted by user_id (then arrival) -> `attributed_orders` rows; runs on the executors.

    A row has user_id, type, ts_us, product_id, rec_id, order_id and items. recsys_core.attribution
    is applied to one shopper's events at a time: a purchase is owed only to that shopper's clicks.
    """
    for _, group in itertools.groupby(rows, key=operator.attrgetter("user_id")):
        events = [
            {
                "type": row.type,
                "user_id": row.user_id,
                "ts": EPOCH + timedelta(microseconds=row.ts_us),
                "product_id": row.product_id,
                "rec_id": row.rec_id,
                "order_id": row.order_id,
                "items": [item.asDict() for item in row.items or ()],
            }
            for row in group
        ]
        yield from map(attributed_row, attributed_purchases(events, window))
