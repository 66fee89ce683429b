"""Ranking rules: browsed categories and bestseller merges."""

from recsys_core.ranking import browsed_categories, merge_bestsellers, merge_scoped_bestsellers, servable
from recsys_core.reasons import stored_reason


def test_first_three_distinct_categories_in_order_of_most_recent_view():
    category_of = {"a": "shoes", "b": "hats", "c": "shoes", "d": "bags", "e": "socks", "f": None}
    assert browsed_categories(["a", "f", "b", "c", "d", "e"], category_of) == ["shoes", "hats", "bags"]


def test_merge_ranks_by_distinct_buyers_then_product_id():
    shoes = [{"product_id": "s2", "buyers": 5}, {"product_id": "s1", "buyers": 3}]
    hats = [{"product_id": "h1", "buyers": 5}, {"product_id": "h9", "buyers": 1}]
    assert merge_bestsellers([shoes, hats], limit=3) == ["h1", "s2", "s1"]


def test_merge_excludes_products_and_keeps_the_highest_count():
    assert merge_bestsellers(
        [[{"product_id": "x", "buyers": 1}], [{"product_id": "x", "buyers": 4}, {"product_id": "y", "buyers": 2}]],
        limit=10,
        exclude={"y"},
    ) == ["x"]


def test_lists_below_the_minimum_size_are_served_empty():
    assert servable(["a", "b"], 5) == []
    assert servable(list("abcde"), 5) == list("abcde")


def test_merged_bestsellers_name_the_scope_each_product_ranks_by():
    lists = {
        "global": [{"product_id": "g", "buyers": 9}, {"product_id": "a", "buyers": 5}],
        "books": [{"product_id": "a", "buyers": 7}, {"product_id": "b", "buyers": 7}],
    }
    assert merge_scoped_bestsellers(lists, limit=3, exclude=["g"]) == [("a", "books"), ("b", "books")]


def test_stored_items_without_a_reason_read_as_the_models():
    assert stored_reason({"product_id": "p", "score": 1.0}, "als") == {"kind": "model"}
    assert stored_reason({"product_id": "p", "reason": {"kind": "nonsense"}}, "realtime") == {"kind": "model"}
    kept = {"kind": "viewed", "product_id": "q"}
    assert stored_reason({"product_id": "p", "reason": kept}, "realtime") == kept
