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

Each product carries its reason (recsys_core.reasons): `viewed` with the recent view whose
neighbour it is most, when the neighbours' part of its blended score is at least the model's;
else `model`, with the recent view whose factors are most like its own; a fill product the
bestsellers' scope it came from.

Everything here is pure: numpy arrays and dicts in, a ranked list out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from recsys_core import reasons
from recsys_core.documents import GLOBAL_SCOPE
from recsys_core.ranking import browsed_categories, merge_scoped_bestsellers

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

    recent_views: Sequence[str]  # product ids, newest first, distinct
    purchased: frozenset[str] = frozenset()
    user_vector: np.ndarray | None = None  # ALS vector, None if the model never saw them


RECENCY = tuple(RECENCY_DECAY**rank for rank in range(RECENT_VIEWS))  # weight of the n-th most recent view


def session_vector(recent_views: Sequence[str], items: ItemFactors) -> np.ndarray | None:
    """Recency-weighted mean of the factors of recently viewed products the model knows."""
    rows, weights = [], []
    for rank, product_id in enumerate(recent_views[:RECENT_VIEWS]):
        row = items.row(product_id)
        if row is not None:
            rows.append(row)
            weights.append(RECENCY[rank])
    if not rows:
        return None
    w = np.asarray(weights)
    return (items.matrix[rows] * w[:, None]).sum(axis=0) / w.sum()


class Scorer:
    """Real-time lists for many shoppers against one model, neighbour table, catalog and bestsellers.

    Scores live in arrays over the model's products: the ALS part is one product of the factor
    matrix and the shopper's vector, the neighbours of each recent view are added as the rows of
    a prepared table, and only the best `limit` are turned into Python objects. Neighbours the
    model does not know (a product added since it was trained) are kept beside the arrays. The
    lists are the same as scoring product by product in dicts, at a fraction of the cost per
    shopper (tests/unit/test_stream_realtime.py holds that plain definition).
    """

    def __init__(
        self,
        items: ItemFactors | None,
        neighbours: Mapping[str, Sequence[Mapping[str, Any]]],
        category_of: Mapping[str, str | None],
        bestsellers: Mapping[str, Sequence[Mapping[str, Any]]],
    ):
        self.items = items if items is not None and items.ids else None
        self.category_of = category_of
        self.bestsellers = bestsellers
        self._size = len(self.items.ids) if self.items else 0
        # product -> (rows of the neighbours the model knows, their similarities, [(other id, similarity)])
        self._neighbours: dict[str, tuple[np.ndarray, np.ndarray, list[tuple[str, float]]]] = {}
        self._similarity: dict[str, dict[str, float]] = {}  # product -> neighbour -> similarity, for reasons
        for product_id, found in neighbours.items():
            merged: dict[str, float] = {}  # once per neighbour, so that `near[rows] += ...` adds every one
            for neighbour in found:
                similarity = float(neighbour["score"])
                if similarity > 0:
                    pid = str(neighbour["product_id"])
                    merged[pid] = merged.get(pid, 0.0) + similarity
            self._similarity[product_id] = merged
            rows, similarities, others = [], [], []
            for pid, similarity in merged.items():
                row = self.items.row(pid) if self.items else None
                if row is None:
                    others.append((pid, similarity))
                else:
                    rows.append(row)
                    similarities.append(similarity)
            self._neighbours[product_id] = (
                np.asarray(rows, dtype=np.intp),
                np.asarray(similarities, dtype=np.float64),
                others,
            )

    def recommend(self, shopper: Shopper, limit: int = LIST_SIZE) -> list[dict[str, Any]]:
        """Ranked [{product_id, score, reason}] for the shopper, best first, at most `limit`."""
        recent = shopper.recent_views[:RECENT_VIEWS]
        excluded = set(shopper.purchased) | set(recent)
        blended, other, near, als = self._blend(shopper, recent)
        ranked = self._best(blended, other, excluded, limit)
        result: list[dict[str, Any]] = [
            {"product_id": pid, "score": round(score, 6), "reason": self._reason(pid, recent, near, als)}
            for pid, score in ranked
        ]
        if len(result) < limit:
            floor = min((entry["score"] for entry in result), default=1.0)
            fill = _bestseller_fill(
                shopper,
                self.category_of,
                self.bestsellers,
                limit - len(result),
                excluded | {str(entry["product_id"]) for entry in result},
            )
            # Half the lowest blended score and falling: a fill never outranks a scored product.
            result.extend(
                {
                    "product_id": pid,
                    "score": round(floor * 0.5 * (1 - rank / len(fill)), 6),
                    "reason": reasons.bestseller_of(scope),
                }
                for rank, (pid, scope) in enumerate(fill)
            )
        return result

    def _reason(
        self, product_id: str, recent: Sequence[str], near: np.ndarray | None, als: np.ndarray | None
    ) -> reasons.Reason:
        """Why a blended product ranks: the part of its score that is larger (see the module's docstring)."""
        row = self.items.row(product_id) if self.items else None
        neighbour_part = near[row] if row is not None and near is not None else 0.0
        model_part = (1 - NEIGHBOUR_WEIGHT) * als[row] if row is not None and als is not None else 0.0
        if row is None or (neighbour_part > 0 and neighbour_part >= model_part):
            weights = [
                weight * self._similarity.get(view, {}).get(product_id, 0.0) for weight, view in zip(RECENCY, recent)
            ]
            if weights and max(weights) > 0:
                return reasons.viewed(recent[weights.index(max(weights))])
        return reasons.model(self._most_like(row, recent))

    def _most_like(self, row: int | None, recent: Sequence[str]) -> str | None:
        """The recent view whose factors point most the way of `row`'s (cosine), if the model knows any."""
        if row is None or self.items is None:
            return None
        known = [(view, view_row) for view in recent if (view_row := self.items.row(view)) is not None]
        if not known:
            return None
        vectors = self.items.matrix[[view_row for _, view_row in known]].astype(np.float64)
        target = self.items.matrix[row].astype(np.float64)
        norms = np.linalg.norm(vectors, axis=1) * (np.linalg.norm(target) or 1.0)
        cosines = (vectors @ target) / np.where(norms > 0, norms, 1.0)
        return known[int(np.argmax(cosines))][0]

    def _blend(
        self, shopper: Shopper, recent: Sequence[str]
    ) -> tuple[np.ndarray | None, dict[str, float], np.ndarray | None, np.ndarray | None]:
        """(blended scores by model row, or None when all are 0; blended scores of products outside the model;
        the neighbours' part by model row and the ALS scores scaled to 0..1, each None when absent)."""
        near = np.zeros(self._size) if self._size else None
        other: dict[str, float] = {}
        for weight, product_id in zip(RECENCY, recent):
            entry = self._neighbours.get(product_id)
            if entry is None:
                continue
            rows, similarities, others = entry
            if near is not None and len(rows):
                near[rows] += weight * similarities
            for pid, similarity in others:
                other[pid] = other.get(pid, 0.0) + weight * similarity
        near_peak = max(float(near.max()) if near is not None else 0.0, max(other.values(), default=0.0))
        als = self._als(shopper)
        if near_peak > 0:
            other = {pid: NEIGHBOUR_WEIGHT * (score / near_peak) for pid, score in other.items()}
            if near is None:
                return None, other, None, als
            near = NEIGHBOUR_WEIGHT * (near / near_peak)
            blended: np.ndarray | None = near if als is None else (1 - NEIGHBOUR_WEIGHT) * als + near
        else:
            other = {}
            near = None
            blended = None if als is None else (1 - NEIGHBOUR_WEIGHT) * als
        return blended, other, near, als

    def _als(self, shopper: Shopper) -> np.ndarray | None:
        """The top ALS_CANDIDATES products' scores scaled so the best is 1, 0 for the rest (None: no scores)."""
        if self.items is None:
            return None
        vector = (
            shopper.user_vector if shopper.user_vector is not None else session_vector(shopper.recent_views, self.items)
        )
        if vector is None:
            return None
        raw = self.items.matrix @ np.asarray(vector, dtype=self.items.matrix.dtype)
        top = min(ALS_CANDIDATES, len(raw))
        best = np.argpartition(-raw, top - 1)[:top]
        peak = float(raw[best].max())
        if peak <= 0:
            return None
        best = best[raw[best] > 0]
        scaled = np.zeros(self._size)
        scaled[best] = raw[best].astype(np.float64) / peak
        return scaled

    def _best(
        self, blended: np.ndarray | None, other: dict[str, float], excluded: set[str], limit: int
    ) -> list[tuple[str, float]]:
        """The `limit` best (product, score) with a score above 0 and not excluded: score desc, product id asc."""
        candidates = [(pid, score) for pid, score in other.items() if score > 0 and pid not in excluded]
        if blended is not None and self.items is not None:
            ids = self.items.ids
            for pid in excluded:
                row = self.items.row(pid)
                if row is not None:
                    blended[row] = 0.0
            rows = np.flatnonzero(blended > 0)
            if len(rows) > limit:
                # Every row scoring at least the limit-th best: ties at the edge are settled by id below.
                edge = np.partition(blended[rows], len(rows) - limit)[len(rows) - limit]
                rows = rows[blended[rows] >= edge]
            candidates += zip((ids[row] for row in rows.tolist()), blended[rows].tolist())
        candidates.sort(key=lambda kv: (-kv[1], kv[0]))
        return candidates[:limit]


def realtime_recommendations(
    shopper: Shopper,
    items: ItemFactors | None,
    neighbours: Mapping[str, Sequence[Mapping[str, Any]]],
    category_of: Mapping[str, str | None],
    bestsellers: Mapping[str, Sequence[Mapping[str, Any]]],
    limit: int = LIST_SIZE,
) -> list[dict[str, Any]]:
    """Ranked [{product_id, score}] for one shopper, best first, at most `limit` (see `Scorer`).

    `neighbours`: product_id -> similar_items neighbours; `category_of`: product_id -> category
    of the viewed products; `bestsellers`: scope (category id or "global") -> ranked
    [{product_id, buyers}].
    """
    return Scorer(items, neighbours, category_of, bestsellers).recommend(shopper, limit)


def _bestseller_fill(
    shopper: Shopper,
    category_of: Mapping[str, str | None],
    bestsellers: Mapping[str, Sequence[Mapping[str, Any]]],
    count: int,
    excluded: set[str],
) -> list[tuple[str, str]]:
    """(product, scope): bestsellers of the categories just browsed (in browsing order), then global ones."""
    chosen: list[tuple[str, str]] = []
    scopes = [*browsed_categories(shopper.recent_views, category_of), GLOBAL_SCOPE]
    for scope in scopes:
        if len(chosen) >= count:
            break
        taken = excluded | {pid for pid, _ in chosen}
        chosen += merge_scoped_bestsellers({scope: bestsellers.get(scope, ())}, count - len(chosen), taken)
    return chosen
