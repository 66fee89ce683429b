"""Shopper lists served from seeded MongoDB documents: history, bestsellers, recommendations, similar."""

from __future__ import annotations

import pytest

from recsys_io.mongo import BESTSELLERS, HISTORY, PRODUCTS, RECOMMENDATIONS, SIMILAR_ITEMS
from tests.support.api import NOW, api_client, bestsellers, history, product, untraced

GLOBAL = [(f"g{i}", 100 - i) for i in range(12)]


@pytest.fixture
def shop(mongo_db):
    """Three categories with their bestsellers, a global list, and products to browse."""
    mongo_db[PRODUCTS].insert_many(
        [
            product(p, c)
            for p, c in [
                ("tv", "electronics"),
                ("radio", "electronics"),
                ("novel", "books"),
                ("atlas", "books"),
                ("mug", "kitchen"),
                ("pan", "kitchen"),
                ("sock", "clothes"),
                ("hat", "clothes"),
            ]
        ]
    )
    mongo_db[BESTSELLERS].insert_many(
        [
            bestsellers("global", GLOBAL),
            bestsellers("electronics", [("tv", 9), ("radio", 4), ("speaker", 2)]),
            bestsellers("books", [("novel", 9), ("atlas", 4), ("poems", 1)]),
            bestsellers("kitchen", [("mug", 7), ("pan", 4)]),
            bestsellers("clothes", [("sock", 50), ("hat", 40)]),
        ]
    )
    return mongo_db


def test_history_is_the_last_distinct_views_newest_first(settings, shop):
    shop[HISTORY].insert_one(history("u1", ["tv", "novel", "mug", "pan", "sock", "hat"]))
    with api_client(settings) as client:
        body = client.get("/v1/users/u1/history", params={"limit": 5}).json()
    assert untraced(body) == {
        "user_id": "u1",
        "products": ["tv", "novel", "mug", "pan", "sock"],
        "type": "personalized",
        "strategy": "browsing_history",
    }


def test_lists_shorter_than_the_minimum_are_served_empty(settings, shop):
    shop[HISTORY].insert_one(history("u1", ["tv", "novel", "mug", "pan"]))
    with api_client(settings) as client:
        assert client.get("/v1/users/u1/history").json()["products"] == []
        assert client.get("/v1/users/u1/history").status_code == 200
    with api_client(settings, min_list_size=4) as client:
        assert client.get("/v1/users/u1/history").json()["products"] == ["tv", "novel", "mug", "pan"]


def test_category_bestsellers_merge_three_most_recent_categories_ties_by_product_id(settings, shop):
    # Most recent first: electronics, books, kitchen; clothes (4th category) is left out.
    shop[HISTORY].insert_one(history("u1", ["radio", "atlas", "tv", "mug", "sock"]))
    with api_client(settings) as client:
        body = client.get("/v1/users/u1/bestsellers").json()
    assert untraced(body) == {
        "user_id": "u1",
        "type": "personalized",
        "strategy": "category_bestsellers",
        "products": ["novel", "tv", "mug", "atlas", "pan", "radio", "speaker", "poems"],
    }


def test_bestsellers_without_history_are_the_global_list(settings, shop):
    with api_client(settings) as client:
        body = client.get("/v1/users/nobody/bestsellers", params={"limit": 3}).json()
    assert untraced(body) == {
        "user_id": "nobody",
        "products": ["g0", "g1", "g2"],
        "type": "non-personalized",
        "strategy": "bestsellers",
    }


def test_recommendations_are_served_as_written_and_carry_the_model(settings, shop):
    # Writers keep purchases out of the document (tests of the speed and batch layers), so the
    # API serves it as it is, in one read.
    items = [{"product_id": f"r{i}", "score": 1 - i / 10} for i in range(8)]
    shop[RECOMMENDATIONS].insert_one(
        {
            "_id": "u1",
            "user_id": "u1",
            "items": items,
            "strategy": "als",
            "model_version": "v7",
            "computed_at": NOW,
            "last_event_ts": NOW,
        }
    )
    with api_client(settings) as client:
        body = client.get("/v1/users/u1/recommendations", params={"limit": 4}).json()
    assert body["products"] == ["r0", "r1", "r2", "r3"]
    assert (body["type"], body["strategy"], body["model_version"]) == ("personalized", "als", "v7")
    assert body["computed_at"].startswith(NOW.strftime("%Y-%m-%dT%H:%M:%S"))


def test_recommendations_fall_back_to_bestsellers_minus_purchases_when_too_few(settings, shop):
    items = [{"product_id": p, "score": 1.0} for p in ["r2", "r3", "r4", "r5"]]
    shop[RECOMMENDATIONS].insert_one(
        {
            "_id": "u1",
            "user_id": "u1",
            "items": items,
            "strategy": "realtime",
            "model_version": "v7",
            "computed_at": NOW,
        }
    )
    shop[HISTORY].insert_one(history("u1", ["tv"], purchased=["r1", "tv"]))
    with api_client(settings) as client:
        fallback = client.get("/v1/users/u1/recommendations").json()
        global_fallback = client.get("/v1/users/stranger/recommendations").json()
    # 4 recommendations are below the minimum of 5; electronics bestsellers minus the bought tv:
    # only 2 left, below the minimum too.
    assert untraced(fallback) == {
        "user_id": "u1",
        "products": [],
        "type": "personalized",
        "strategy": "category_bestsellers",
    }
    assert global_fallback["products"] == [p for p, _ in GLOBAL[:10]]
    assert (global_fallback["type"], global_fallback["strategy"]) == ("non-personalized", "bestsellers")
    assert "model_version" not in global_fallback


def test_shop_and_category_bestsellers(settings, shop):
    with api_client(settings, min_list_size=2) as client:
        assert untraced(client.get("/v1/bestsellers", params={"limit": 2}).json()) == {
            "scope": "global",
            "products": ["g0", "g1"],
            "type": "non-personalized",
            "strategy": "bestsellers",
        }
        assert client.get("/v1/bestsellers", params={"category": "books"}).json()["products"] == [
            "novel",
            "atlas",
            "poems",
        ]
        assert client.get("/v1/bestsellers", params={"category": "unknown"}).json()["products"] == []


def test_product_pages_link_to_the_next_page_until_the_last(settings, shop):
    with api_client(settings) as client:
        first = client.get("/v1/products", params={"limit": 5}).json()
        second = client.get(first["next"]).json()
        kitchen = client.get("/v1/products", params={"category": "kitchen"}).json()
        one = client.get("/v1/products/mug")
        missing = client.get("/v1/products/nope")
    assert [p["product_id"] for p in first["products"]] == ["atlas", "hat", "mug", "novel", "pan"]
    assert [p["product_id"] for p in second["products"]] == ["radio", "sock", "tv"] and second["next"] is None
    assert [p["product_id"] for p in kitchen["products"]] == ["mug", "pan"]
    assert one.json()["category_id"] == "kitchen"
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"


def test_similar_products_of_known_and_unknown_products(settings, shop):
    shop[SIMILAR_ITEMS].insert_one(
        {
            "_id": "tv",
            "product_id": "tv",
            "source": "als",
            "computed_at": NOW,
            "neighbours": [{"product_id": f"n{i}", "score": 1.0} for i in range(7)],
        }
    )
    with api_client(settings) as client:
        similar = client.get("/v1/products/tv/similar", params={"limit": 6}).json()
        none_yet = client.get("/v1/products/mug/similar").json()
        unknown = client.get("/v1/products/nope/similar")
    assert similar["products"] == [f"n{i}" for i in range(6)] and similar["strategy"] == "similar_items"
    assert none_yet["products"] == []
    assert unknown.status_code == 404


@pytest.mark.parametrize(
    "method, path, status",
    [
        ("GET", "/v1/nowhere", 404),
        ("PATCH", "/v1/events", 405),
        ("GET", "/v1/users/u1/history?limit=0", 400),
        ("GET", "/v1/users/u1/history?limit=abc", 400),
        ("GET", "/v1/products?offset=-1", 400),
    ],
)
def test_bad_requests_answer_in_the_one_error_shape(settings, mongo_db, method, path, status):
    with api_client(settings) as client:
        response = client.request(method, path)
    assert response.status_code == status
    assert set(response.json()["error"]) == {"code", "message", "details"}


def test_storefront_page_and_its_lookups_are_served(settings, shop):
    shop[HISTORY].insert_one(history("u1", ["tv"]))
    with api_client(settings) as client:
        page = client.get("/demo")
        users = client.get("/demo/users").json()
        categories = client.get("/demo/categories").json()
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert users == {"users": ["u1"]}
    assert categories == {"categories": ["books", "clothes", "electronics", "kitchen"]}
