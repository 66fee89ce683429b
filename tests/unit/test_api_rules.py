"""Domain rules behind the API's lists and catalog validation (no server)."""

from __future__ import annotations

import functools
from datetime import UTC, datetime, timedelta

import pytest

from recsys_core import ranking
from recsys_core.catalog import InvalidProduct, parse_catalog, parse_product
from recsys_core.history import BrowsingHistory, escape_key

T0 = datetime(2026, 11, 1, tzinfo=UTC)
DEEP = functools.reduce(lambda inner, _: [inner], range(12), [])


def test_category_bestsellers_merge_ranks_by_buyers_then_product_id():
    electronics = [{"product_id": "tv", "buyers": 5}, {"product_id": "radio", "buyers": 3}]
    books = [{"product_id": "novel", "buyers": 5}, {"product_id": "atlas", "buyers": 3}]
    assert ranking.merge_bestsellers([electronics, books], limit=10) == ["novel", "tv", "atlas", "radio"]


def test_browsed_categories_keep_first_three_distinct_by_most_recent_view():
    category_of = {"a": "c1", "b": "c2", "c": "c1", "d": "c3", "e": "c4"}
    assert ranking.browsed_categories(["a", "b", "c", "d", "e"], category_of) == ["c1", "c2", "c3"]


def test_serve_gives_nothing_below_the_minimum_but_truncates_above_it():
    products = [f"p{i}" for i in range(6)]
    assert ranking.serve(products[:4], limit=10, min_list_size=5) == []
    assert ranking.serve(products, limit=3, min_list_size=5) == ["p0", "p1", "p2"]


def test_serve_applies_the_minimum_after_exclusions():
    products = [f"p{i}" for i in range(5)]
    assert ranking.serve(products, limit=10, min_list_size=5, exclude=["p1"]) == []
    assert ranking.serve(products, limit=10, min_list_size=4, exclude=["p1"]) == ["p0", "p2", "p3", "p4"]


def test_shown_history_drops_views_older_than_their_deletion_and_keeps_newer_ones():
    history = BrowsingHistory.from_document(
        {
            "items": [
                {"product_id": "back", "ts": T0 + timedelta(hours=3)},
                {"product_id": "new", "ts": T0 + timedelta(hours=2)},
                {"product_id": "gone.v2", "ts": T0},
            ],
            "deleted": {escape_key("gone.v2"): T0 + timedelta(hours=1), "back": T0 + timedelta(hours=1)},
        }
    )
    assert ranking.shown_history(history) == ["back", "new"]


def test_product_with_every_field_is_canonical():
    product = parse_product(
        {
            "product_id": " p1 ",
            "category_id": 7,
            "name": "Lamp",
            "price": 12,
            "attributes": {"colour": "red"},
            "extra": "ignored",
        }
    )
    assert product == {
        "product_id": "p1",
        "category_id": "7",
        "name": "Lamp",
        "description": None,
        "price": 12.0,
        "attributes": {"colour": "red"},
    }


def test_invalid_product_lists_every_wrong_field():
    with pytest.raises(InvalidProduct) as caught:
        parse_product({"product_id": "", "price": -1, "attributes": [1], "name": 3})
    fields = sorted(e.field for e in caught.value.errors)
    assert fields == ["attributes", "category_id", "name", "price", "product_id"]


def test_catalog_errors_carry_the_index_and_a_repeated_product_keeps_its_last_version():
    products, errors = parse_catalog(
        [{"product_id": "a", "category_id": "c1"}, "nope", {"product_id": "a", "category_id": "c2"}]
    )
    assert errors == [{"index": 1, "field": "", "reason": "a product must be a JSON object"}]
    assert [(p["product_id"], p["category_id"]) for p in products] == [("a", "c2")]


@pytest.mark.parametrize(
    "attributes",
    [
        {"$set": 1},
        {"size": {"a.b": 1}},
        {"\x00": None},
        {"x": [{"$y": 1}]},
        {"n": 2**64},
        {"x": [1, [2]]},
        {"deep": DEEP},
    ],
)
def test_attributes_a_document_cannot_hold_are_refused(attributes):
    with pytest.raises(InvalidProduct) as caught:
        parse_product({"product_id": "p", "category_id": "c", "attributes": attributes})
    assert [e.field for e in caught.value.errors] == ["attributes"]


@pytest.mark.parametrize(
    "raw, routed, identifier",
    [
        (b"/v1/products/a%2Fb/similar", "/v1/products/a%2Fb/similar", "a/b"),
        (b"/v1/users/shop%2f7/history/50%25%20off", "/v1/users/shop%2F7/history/50%25 off", "shop/7"),
        (b"/v1/products/a%252Fb?limit=3", "/v1/products/a%252Fb", "a%2Fb"),
    ],
)
def test_paths_with_escapes_are_routed_on_their_segments_and_the_ids_decoded(raw, routed, identifier):
    import asyncio

    from recsys_api.paths import decode_path_params, route_on_segments

    scope = {"type": "http", "path": "as the server decoded it", "raw_path": raw}
    route_on_segments(scope)
    assert scope["path"] == routed
    scope["path_params"] = {"id": routed.split("/")[3]}  # what the router takes from the id's segment
    seen = {}

    async def handler(scope, receive, send):
        seen.update(scope["path_params"])

    asyncio.run(decode_path_params(handler)(scope, None, None))
    assert seen == {"id": identifier}


def test_paths_without_escapes_are_left_as_the_server_decoded_them():
    from recsys_api.paths import route_on_segments

    scope = {"type": "http", "path": "/v1/users/u1/history", "raw_path": b"/v1/users/u1/history"}
    route_on_segments(scope)
    assert scope == {"type": "http", "path": "/v1/users/u1/history", "raw_path": b"/v1/users/u1/history"}
