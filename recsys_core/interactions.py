"""Implicit feedback: how much each event says a shopper likes a product, as of a time.

A pair's strength is the sum of its events' weights (per event type; a rating weighs its score),
each optionally halved every `half_life_days` of its age at `as_of`. Only events at or before
`as_of` count, so the strengths as of a time come out the same however often, and however late,
they are computed. A `history_delete` is a tombstone: the shopper asked to forget the product, so
every event of that pair up to the delete is dropped; only events after it count again.

This is the one definition: the batch layer's `interactions` asset applies it on Spark's
executors to one shopper's events at a time (`recsys_assets.records.shopper_strengths`).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from recsys_core.events import as_datetime, changes_shopper_state

DEFAULT_WEIGHTS: dict[str, float] = {"product_view": 1.0, "add_to_cart": 3.0, "purchase": 5.0}
RATING = "rating"  # weighs its score (0.5 .. 5) instead of a fixed weight
TOMBSTONE = "history_delete"
SECONDS_PER_DAY = 86400


@dataclass(frozen=True)
class PairStrength:
    strength: float
    last_ts: datetime  # the newest event that counted
    events: int  # how many events counted


def event_weight(event_type: str, score: float | None, weights: Mapping[str, float]) -> float:
    if event_type == RATING:
        return float(score or 0.0)
    return float(weights.get(event_type, 0.0))


def decay(age_days: float, half_life_days: float | None) -> float:
    """1 for fresh events; halves every `half_life_days` (no decay when None or 0)."""
    if not half_life_days:
        return 1.0
    return 0.5 ** (max(age_days, 0.0) / half_life_days)


def _products(event: Mapping[str, Any]) -> list[str]:
    if event["type"] == "purchase":
        return [item["product_id"] for item in event.get("items") or ()]
    return [event["product_id"]]


def interaction_strengths(
    events: Iterable[Mapping[str, Any]],
    as_of: datetime,
    weights: Mapping[str, float] = DEFAULT_WEIGHTS,
    half_life_days: float | None = None,
) -> dict[tuple[str, str], PairStrength]:
    """(user_id, product_id) -> its strength as of `as_of`, for the pairs with a positive strength.

    `events` are canonical events (recsys_core.events), `ts` as text or as an aware datetime. The
    sum is exact (`math.fsum`), so neither the order of the events nor how Spark partitions them
    changes a strength in its last bit.
    """
    counted: list[tuple[str, str, datetime, float]] = []
    deleted: dict[tuple[str, str], datetime] = {}
    for event in events:
        if not changes_shopper_state(event):  # a list shown or clicked says what was served, not a taste
            continue
        ts = as_datetime(event["ts"])
        if ts > as_of:
            continue
        if event["type"] == TOMBSTONE:
            key = (event["user_id"], event["product_id"])
            deleted[key] = max(ts, deleted.get(key, ts))
            continue
        weight = event_weight(event["type"], event.get("score"), weights)
        weight *= decay((as_of - ts).total_seconds() / SECONDS_PER_DAY, half_life_days)
        counted += ((event["user_id"], product_id, ts, weight) for product_id in _products(event))
    by_pair: dict[tuple[str, str], list[tuple[datetime, float]]] = defaultdict(list)
    for user_id, product_id, ts, weight in counted:
        key = (user_id, product_id)
        if key not in deleted or ts > deleted[key]:
            by_pair[key].append((ts, weight))
    strengths = {
        key: PairStrength(math.fsum(w for _, w in kept), max(ts for ts, _ in kept), len(kept))
        for key, kept in by_pair.items()
    }
    return {key: pair for key, pair in strengths.items() if pair.strength > 0}
