"""Implicit feedback: how much each event says a shopper likes a product.

A pair's strength is the sum of its events' weights (per event type; a rating weighs its score),
each optionally halved every `half_life_days` of age. A `history_delete` is a tombstone: the
shopper asked to forget the product, so every event of that pair up to the delete is dropped;
only events after it count again.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from recsys_core.events import parse_ts

DEFAULT_WEIGHTS: dict[str, float] = {"product_view": 1.0, "add_to_cart": 3.0, "purchase": 5.0}
RATING = "rating"  # weighs its score (0.5 .. 5) instead of a fixed weight
TOMBSTONE = "history_delete"


def event_weight(event_type: str, score: float | None, weights: Mapping[str, float]) -> float:
    if event_type == RATING:
        return float(score or 0.0)
    return float(weights.get(event_type, 0.0))


def decay(age_days: float, half_life_days: float | None) -> float:
    """1 for fresh events; halves every `half_life_days` (no decay when None)."""
    if not half_life_days:
        return 1.0
    return 0.5 ** (max(age_days, 0.0) / half_life_days)


def _pairs(event: Mapping[str, Any]) -> list[str]:
    if event["type"] == "purchase":
        return [item["product_id"] for item in event.get("items") or ()]
    return [event["product_id"]]


def interaction_strengths(events: Iterable[Mapping[str, Any]], as_of: datetime,
                          weights: Mapping[str, float] = DEFAULT_WEIGHTS,
                          half_life_days: float | None = None) -> dict[tuple[str, str], float]:
    """(user_id, product_id) -> strength, for pairs with a positive strength."""
    events = list(events)
    deleted: dict[tuple[str, str], datetime] = {}
    for event in events:
        if event["type"] == TOMBSTONE:
            key = (event["user_id"], event["product_id"])
            ts = parse_ts(event["ts"])
            deleted[key] = max(ts, deleted.get(key, ts))
    strengths: dict[tuple[str, str], float] = defaultdict(float)
    for event in events:
        if event["type"] == TOMBSTONE:
            continue
        ts = parse_ts(event["ts"])
        weight = event_weight(event["type"], event.get("score"), weights)
        age_days = (as_of - ts).total_seconds() / 86400
        for product_id in _pairs(event):
            key = (event["user_id"], product_id)
            if key in deleted and ts <= deleted[key]:
                continue
            strengths[key] += weight * decay(age_days, half_life_days)
    return {key: value for key, value in strengths.items() if value > 0}
