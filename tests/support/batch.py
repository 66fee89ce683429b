"""Helpers of the batch tests: events as a producer writes them, a small model configuration."""

from __future__ import annotations

import uuid
from datetime import datetime

from recsys_core.events import format_ts
from recsys_io.kafka import make_producer

# One candidate of each family: the search, its choice and the checks are what the tests need, and
# each EASE candidate more is a fit and an evaluation more.
SMALL_MODEL = {
    "rank": 8,
    "max_iter": 8,
    "search_ranks": [8],
    "search_reg_params": [0.05],
    "search_alphas": [10.0],
    "search_ease_l2s": [20.0],
    "search_ease_binary": [True],
}


def model_config(**overrides):
    return {"ops": {"als_model": {"config": {**SMALL_MODEL, **overrides}}}}


def produce(settings, events) -> None:
    """Produce raw values (dicts or bytes) to the events topic, keyed by user id, and wait for acks."""
    producer = make_producer(settings)
    try:
        for event in events:
            key = event.get("user_id") if isinstance(event, dict) else None
            producer.send(settings.topics.events, key=key, value=event)
        producer.flush(30)
    finally:
        producer.close()


def land(settings, spark) -> None:
    """What the events topic holds now, landed in the lake's events_landing (`recsys sink --once`)."""
    from streaming.sink import run

    run(settings, once=True, spark=spark)


def event(kind: str, user: str, product: str, ts: datetime, **fields) -> dict:
    body = {"event_id": str(uuid.uuid4()), "type": kind, "user_id": user, "ts": format_ts(ts), **fields}
    if kind == "purchase":
        body.setdefault("order_id", str(uuid.uuid4()))
        body["items"] = [{"product_id": product, "quantity": 1, "price": 9.5}]
    else:
        body["product_id"] = product
    return body
