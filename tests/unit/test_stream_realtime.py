"""Real-time scoring (recsys_core.realtime): pure, no server."""

from __future__ import annotations

import numpy as np

from recsys_core.realtime import ItemFactors, Shopper, realtime_recommendations
from recsys_core.reasons import KINDS

# Two clusters in factor space: shoes (s*) and books (b*).
ITEMS = ItemFactors(
    ids=("s1", "s2", "s3", "s4", "b1", "b2", "b3", "b4"),
    matrix=np.array([[1.0, 0.0]] * 4 + [[0.0, 1.0]] * 4) + np.arange(8)[:, None] * 0.01,
)
CATEGORY_OF = {"s1": "shoes", "s2": "shoes", "b1": "books", "b2": "books"}
BESTSELLERS = {
    "shoes": [{"product_id": "s9", "buyers": 10}, {"product_id": "s1", "buyers": 5}],
    "books": [{"product_id": "b9", "buyers": 7}],
    "global": [{"product_id": "g1", "buyers": 99}, {"product_id": "s9", "buyers": 10}],
}


def ids(recommendations):
    return [entry["product_id"] for entry in recommendations]


def test_known_shopper_gets_products_near_their_als_vector():
    shopper = Shopper(recent_views=(), user_vector=np.array([0.0, 1.0]))
    top = ids(realtime_recommendations(shopper, ITEMS, {}, {}, {}, limit=4))
    assert set(top) == {"b1", "b2", "b3", "b4"}


def test_a_view_pulls_its_neighbours_up_at_once():
    shopper = Shopper(recent_views=("s1",), user_vector=np.array([0.0, 1.0]))
    neighbours = {"s1": [{"product_id": "s2", "score": 0.9}]}
    top = ids(realtime_recommendations(shopper, ITEMS, neighbours, {}, {}, limit=3))
    assert top[0] == "s2"


def test_shopper_unknown_to_the_model_is_scored_from_recent_views():
    shopper = Shopper(recent_views=("b1",))
    top = ids(realtime_recommendations(shopper, ITEMS, {}, {}, {}, limit=3))
    assert set(top) <= {"b2", "b3", "b4"} and len(top) == 3


def test_bought_and_just_viewed_products_are_never_recommended():
    shopper = Shopper(recent_views=("b1",), purchased=frozenset({"b2"}), user_vector=np.array([0.0, 1.0]))
    top = ids(realtime_recommendations(shopper, ITEMS, {}, {}, BESTSELLERS))
    assert "b1" not in top and "b2" not in top


def test_without_a_model_bestsellers_of_browsed_categories_fill_in_browsing_order():
    shopper = Shopper(recent_views=("b1", "s1"))
    result = realtime_recommendations(shopper, None, {}, CATEGORY_OF, BESTSELLERS, limit=4)
    assert ids(result) == ["b9", "s9", "g1"]
    assert [e["score"] for e in result] == sorted((e["score"] for e in result), reverse=True)


def test_bestseller_fill_ranks_below_every_scored_product():
    shopper = Shopper(recent_views=("s1",))
    neighbours = {"s1": [{"product_id": "s2", "score": 0.5}]}
    result = realtime_recommendations(shopper, None, neighbours, CATEGORY_OF, BESTSELLERS, limit=3)
    assert ids(result) == ["s2", "s9", "g1"]
    assert result[0]["score"] > result[1]["score"] > result[2]["score"]


def test_each_product_says_why_it_was_chosen():
    # s2 is a neighbour of the view s1 (and unlike the shopper's vector); b1..b4 are the model's.
    shopper = Shopper(recent_views=("s1", "b1"), user_vector=np.array([0.0, 1.0]))
    neighbours = {"s1": [{"product_id": "s2", "score": 0.9}]}
    result = realtime_recommendations(shopper, ITEMS, neighbours, CATEGORY_OF, BESTSELLERS, limit=4)
    reasons = {e["product_id"]: e["reason"] for e in result}
    assert reasons["s2"] == {"kind": "viewed", "product_id": "s1"}
    assert reasons["b2"] == {"kind": "model", "product_id": "b1"}


def test_fill_products_name_the_bestsellers_they_came_from():
    shopper = Shopper(recent_views=("b1",))
    result = realtime_recommendations(shopper, None, {}, CATEGORY_OF, BESTSELLERS, limit=3)
    assert [(e["product_id"], e["reason"]) for e in result] == [
        ("b9", {"kind": "category_bestseller", "category_id": "books"}),
        ("g1", {"kind": "bestseller"}),
        ("s9", {"kind": "bestseller"}),
    ]


def test_scores_are_deterministic_for_ties():
    shopper = Shopper(recent_views=("x",))
    neighbours = {"x": [{"product_id": "q", "score": 0.5}, {"product_id": "p", "score": 0.5}]}
    assert ids(realtime_recommendations(shopper, None, neighbours, {}, {})) == ["p", "q"]


# The plain definition, product by product in dicts: `Scorer` must give the same lists.
def plain_recommendations(shopper, items, neighbours, category_of, bestsellers, limit=20):
    from recsys_core.realtime import (
        ALS_CANDIDATES,
        NEIGHBOUR_WEIGHT,
        RECENCY_DECAY,
        RECENT_VIEWS,
        _bestseller_fill,
        session_vector,
    )

    als = {}
    if items is not None and items.ids:
        vector = shopper.user_vector if shopper.user_vector is not None else session_vector(shopper.recent_views, items)
        if vector is not None:
            raw = items.matrix @ np.asarray(vector, dtype=items.matrix.dtype)
            best = np.argpartition(-raw, min(ALS_CANDIDATES, len(raw)) - 1)[: min(ALS_CANDIDATES, len(raw))]
            peak = float(raw[best].max())
            if peak > 0:
                als = {items.ids[i]: float(raw[i]) / peak for i in best if raw[i] > 0}
    near = {}
    for rank, product_id in enumerate(shopper.recent_views[:RECENT_VIEWS]):
        for neighbour in neighbours.get(product_id, ()):
            if neighbour["score"] > 0:
                pid = neighbour["product_id"]
                near[pid] = near.get(pid, 0.0) + RECENCY_DECAY**rank * neighbour["score"]
    peak = max(near.values(), default=0.0)
    near = {pid: score / peak for pid, score in near.items()} if peak > 0 else {}
    excluded = set(shopper.purchased) | set(shopper.recent_views[:RECENT_VIEWS])
    blended = {
        pid: (1 - NEIGHBOUR_WEIGHT) * als.get(pid, 0.0) + NEIGHBOUR_WEIGHT * near.get(pid, 0.0)
        for pid in als.keys() | near.keys()
        if pid not in excluded
    }
    ranked = sorted(blended.items(), key=lambda kv: (-kv[1], kv[0]))[:limit]
    result = [{"product_id": pid, "score": round(score, 6)} for pid, score in ranked]
    if len(result) < limit:
        floor = min((entry["score"] for entry in result), default=1.0)
        fill = _bestseller_fill(
            shopper, category_of, bestsellers, limit - len(result), excluded | {entry["product_id"] for entry in result}
        )
        result.extend(
            {"product_id": pid, "score": round(floor * 0.5 * (1 - rank / len(fill)), 6)}
            for rank, (pid, _) in enumerate(fill)
        )
    return result


def test_scorer_gives_the_lists_of_the_plain_definition():
    rng = np.random.default_rng(7)
    catalog = [f"p{i:03d}" for i in range(300)]
    model = ItemFactors(ids=tuple(catalog[:250]), matrix=rng.normal(0, 0.3, (250, 8)).astype(np.float32))
    # Neighbours include products the model does not know (the last 50) and ties in similarity.
    neighbours = {
        pid: [
            {"product_id": str(q), "score": float(rng.choice([0.9, 0.5, 0.5, 0.2, 0.0]))}
            for q in rng.choice(catalog, 12, replace=False)
        ]
        for pid in catalog
    }
    category_of = {pid: f"c{i % 7}" for i, pid in enumerate(catalog)}
    bestsellers = {
        f"c{c}": [{"product_id": p, "buyers": 50 - j} for j, p in enumerate(catalog[c::7][:25])] for c in range(7)
    } | {"global": [{"product_id": "g1", "buyers": 99}]}
    compared = 0
    for items in (model, None):
        for case in range(150):
            views = [str(p) for p in rng.choice(catalog, int(rng.integers(0, 9)), replace=False)]
            shopper = Shopper(
                recent_views=views,
                purchased=frozenset(str(p) for p in rng.choice(catalog, int(rng.integers(0, 4)))),
                user_vector=rng.normal(0, 0.3, 8) if case % 3 == 0 else None,
            )
            limit = int(rng.choice([3, 20, 60]))
            scored = realtime_recommendations(shopper, items, neighbours, category_of, bestsellers, limit)
            assert [{k: e[k] for k in ("product_id", "score")} for e in scored] == plain_recommendations(
                shopper, items, neighbours, category_of, bestsellers, limit
            )
            assert all(e["reason"]["kind"] in KINDS for e in scored)
            compared += 1
    assert compared == 300
