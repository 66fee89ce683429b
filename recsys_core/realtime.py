"""Real-time recommendations: the promoted ALS model blended with what the shopper just looked at.

For one shopper, given their history (newest view first) and purchases:

1. **ALS**: the shopper's user vector against every item factor. A shopper the model has never
   seen gets a stand-in vector, the recency-weighted mean of the factors of their recent views,
   so even a brand-new visitor gets model scores after one view.
2. **Neighbours**: the `similar_items` of the most recent views, each weighted by how recent the
   view is (the newest counts most), so a view changes the list at once.
3. The two are scaled to 0..1 and blended (`NEIGHBOUR_WEIGHT`); products the shopper bought and
   the recent views themselves are left out (they have just seen those).
4. If that gives fewer than `limit` products, the bestsellers of the categories just browsed,
   then the global bestsellers, fill the rest, ranked below every blended product.

Everything here is pure: numpy arrays and dicts in, a ranked list out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from recsys_core.documents import GLOBAL_SCOPE
from recsys_core.ranking import browsed_categories, merge_bestsellers

LIST_SIZE = 20
RECENT_VIEWS = 5
RECENCY_DECAY = 0.7
NEIGHBOUR_WEIGHT = 0.6
ALS_CANDIDATES = 200


@dataclass(frozen=True)
class ItemFactors:
    """A model's item factors: `ids[i]` has row `matrix[i]`."""

    ids: tuple[str, ...]
    matrix: np.ndarray

    def __post_init__(self) -> None:
        object.__setattr__(self, "_index", {pid: i for i, pid in enumerate(self.ids)})

    def row(self, product_id: str) -> int | None:
        return self._index.get(product_id)  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Shopper:
    """What the scorer knows about one shopper."""

    recent_views: Sequence[str]                    # product ids, newest first, distinct
    purchased: frozenset[str] = frozenset()
    user_vector: np.ndarray | None = None          # ALS vector, None if the model never saw them


def recency_weights(count: int) -> np.ndarray:
    return RECENCY_DECAY ** np.arange(count, dtype=np.float64)


def session_vector(recent_views: Sequence[str], items: ItemFactors) -> np.ndarray | None:
    """Recency-weighted mean of the factors of recently viewed products the model knows."""
    rows, weights = [], []
    for rank, product_id in enumerate(recent_views[:RECENT_VIEWS]):
        row = items.row(product_id)
        if row is not None:
            rows.append(row)
            weights.append(RECENCY_DECAY ** rank)
    if not rows:
        return None
    w = np.asarray(weights)
    return (items.matrix[rows] * w[:, None]).sum(axis=0) / w.sum()


def als_scores(shopper: Shopper, items: ItemFactors | None) -> dict[str, float]:
    """Top ALS candidates for the shopper, scaled so the best is 1 (empty without a model)."""
    if items is None or not items.ids:
        return {}
    vector = shopper.user_vector if shopper.user_vector is not None else session_vector(shopper.recent_views, items)
    if vector is None:
        return {}
    raw = items.matrix @ np.asarray(vector, dtype=items.matrix.dtype)
    top = min(ALS_CANDIDATES, len(raw))
    best = np.argpartition(-raw, top - 1)[:top]
    peak = float(raw[best].max())
    if peak <= 0:
        return {}
    return {items.ids[i]: float(raw[i]) / peak for i in best if raw[i] > 0}


def neighbour_scores(recent_views: Sequence[str],
                     neighbours: Mapping[str, Sequence[Mapping[str, Any]]]) -> dict[str, float]:
    """Neighbours of the recent views, weighted by view recency, scaled so the best is 1."""
    scores: dict[str, float] = {}
    for weight, product_id in zip(recency_weights(RECENT_VIEWS), recent_views[:RECENT_VIEWS]):
        for neighbour in neighbours.get(product_id, ()):
            similarity = float(neighbour["score"])
            if similarity > 0:
                pid = str(neighbour["product_id"])
                scores[pid] = scores.get(pid, 0.0) + float(weight) * similarity
    peak = max(scores.values(), default=0.0)
    return {pid: score / peak for pid, score in scores.items()} if peak > 0 else {}


def realtime_recommendations(
    shopper: Shopper,
    items: ItemFactors | None,
    neighbours: Mapping[str, Sequence[Mapping[str, Any]]],
    category_of: Mapping[str, str | None],
    bestsellers: Mapping[str, Sequence[Mapping[str, Any]]],
    limit: int = LIST_SIZE,
) -> list[dict[str, Any]]:
    """Ranked [{product_id, score}] for the shopper, best first, at most `limit`.

    `neighbours`: product_id -> similar_items neighbours; `category_of`: product_id -> category
    of the viewed products; `bestsellers`: scope (category id or "global") -> ranked
    [{product_id, buyers}].
    """
    excluded = set(shopper.purchased) | set(shopper.recent_views[:RECENT_VIEWS])
    als = als_scores(shopper, items)
    near = neighbour_scores(shopper.recent_views, neighbours)
    blended: dict[str, float] = {}
    for pid in als.keys() | near.keys():
        if pid not in excluded:
            blended[pid] = (1 - NEIGHBOUR_WEIGHT) * als.get(pid, 0.0) + NEIGHBOUR_WEIGHT * near.get(pid, 0.0)
    ranked = sorted(blended.items(), key=lambda kv: (-kv[1], kv[0]))[:limit]
    result = [{"product_id": pid, "score": round(score, 6)} for pid, score in ranked]
    if len(result) < limit:
        floor = min((entry["score"] for entry in result), default=1.0)
        fill = _bestseller_fill(shopper, category_of, bestsellers, limit - len(result),
                                excluded | {entry["product_id"] for entry in result})
        # Half the lowest blended score and falling: a fill never outranks a scored product.
        result.extend({"product_id": pid, "score": round(floor * 0.5 * (1 - rank / len(fill)), 6)}
                      for rank, pid in enumerate(fill))
    return result


def _bestseller_fill(shopper: Shopper, category_of: Mapping[str, str | None],
                     bestsellers: Mapping[str, Sequence[Mapping[str, Any]]], count: int,
                     excluded: set[str]) -> list[str]:
    """Bestsellers of the categories just browsed (in browsing order), then global ones."""
    chosen: list[str] = []
    scopes = [*browsed_categories(shopper.recent_views, category_of), GLOBAL_SCOPE]
    for scope in scopes:
        if len(chosen) >= count:
            break
        chosen += merge_bestsellers([bestsellers.get(scope, ())], count - len(chosen), excluded | set(chosen))
    return chosen
