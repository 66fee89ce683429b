"""Real-time scoring (recsys_core.realtime): pure, no server."""

from __future__ import annotations

import numpy as np

from recsys_core.realtime import ItemFactors, Shopper, realtime_recommendations

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


def test_scores_are_deterministic_for_ties():
    shopper = Shopper(recent_views=("x",))
    neighbours = {"x": [{"product_id": "q", "score": 0.5}, {"product_id": "p", "score": 0.5}]}
    assert ids(realtime_recommendations(shopper, None, neighbours, {}, {})) == ["p", "q"]
