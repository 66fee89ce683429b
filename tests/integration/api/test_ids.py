"""Every id the platform accepts is addressable by every route that takes one: ids go percent-encoded
in path segments, `/` as `%2F` included."""

from __future__ import annotations

from urllib.parse import quote

import pytest

from recsys_io.mongo import BESTSELLERS, HISTORY, PRODUCTS, RECOMMENDATIONS, SIMILAR_ITEMS
from tests.support.api import TopicReader, api_client, bestsellers, history, product

ODD_IDS = ["shoes/42", "/", "a/b/similar", "50% off", "a%2Fb", "a%41", "v1.2", "?x#y"]
NEIGHBOURS = [f"n{i}" for i in range(5)]


def segment(identifier: str) -> str:
    """An id as a client puts it in a path (encodeURIComponent)."""
    return quote(identifier, safe="")


@pytest.fixture
def shop(mongo_db, unique):
    user = f"shop/{unique}/7"
    mongo_db[PRODUCTS].insert_many([product(p, "c/1") for p in ODD_IDS + NEIGHBOURS])
    mongo_db[SIMILAR_ITEMS].insert_many(
        [
            {"_id": p, "product_id": p, "neighbours": [{"product_id": n, "score": 1.0} for n in NEIGHBOURS]}
            for p in ODD_IDS
        ]
    )
    mongo_db[BESTSELLERS].insert_many(
        [bestsellers("c/1", [(n, 5) for n in NEIGHBOURS]), bestsellers("global", [(n, 5) for n in NEIGHBOURS])]
    )
    mongo_db[HISTORY].insert_one(history(user, ODD_IDS))
    mongo_db[RECOMMENDATIONS].insert_one(
        {
            "_id": user,
            "user_id": user,
            "strategy": "als",
            "items": [{"product_id": n, "score": 1.0} for n in NEIGHBOURS],
        }
    )
    return user


@pytest.mark.parametrize("product_id", ODD_IDS)
def test_a_product_and_its_similar_products_are_found_by_any_id(settings, shop, product_id):
    with api_client(settings) as client:
        found = client.get(f"/v1/products/{segment(product_id)}")
        similar = client.get(f"/v1/products/{segment(product_id)}/similar")
    assert found.status_code == 200 and found.json()["product_id"] == product_id
    assert similar.status_code == 200
    assert similar.json()["product_id"] == product_id and similar.json()["products"] == NEIGHBOURS


def test_a_shopper_whose_id_holds_slashes_has_every_list(settings, shop):
    with api_client(settings) as client:
        lists = {
            route: client.get(f"/v1/users/{segment(shop)}/{route}")
            for route in ("history", "bestsellers", "recommendations")
        }
    assert {route: (r.status_code, r.json()["user_id"]) for route, r in lists.items()} == {
        route: (200, shop) for route in lists
    }
    assert lists["history"].json()["products"] == ODD_IDS
    assert lists["bestsellers"].json()["strategy"] == "category_bestsellers"
    assert lists["recommendations"].json()["products"] == NEIGHBOURS


def test_any_product_is_deleted_from_a_history_by_its_id_and_the_event_names_both_ids(settings, shop, mongo_db):
    events = TopicReader(settings, settings.topics.events)
    try:
        with api_client(settings, min_list_size=1) as client:
            for product_id in ODD_IDS[:-1]:
                assert client.delete(f"/v1/users/{segment(shop)}/history/{segment(product_id)}").status_code == 204
            assert client.get(f"/v1/users/{segment(shop)}/history").json()["products"] == ODD_IDS[-1:]
        deletes = [r.value for r in events.read(len(ODD_IDS) - 1) if r.key == shop]
    finally:
        events.close()
    stored = mongo_db[HISTORY].find_one({"_id": shop})
    assert stored["product_ids"] == ODD_IDS[-1:] and len(stored["deleted"]) == len(ODD_IDS) - 1
    assert [(e["user_id"], e["product_id"]) for e in deletes] == [(shop, p) for p in ODD_IDS[:-1]]


def test_an_id_left_unencoded_is_read_as_more_path_and_not_found(settings, shop):
    with api_client(settings) as client:
        response = client.get(f"/v1/users/{shop}/history")
    assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"
