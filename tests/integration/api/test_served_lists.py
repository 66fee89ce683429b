"""Every served list is traceable: a rec_id, items with reasons, an impression on the events topic;
clicks name the list; exclude= and category= narrow a shopper's lists."""

from __future__ import annotations

import pytest

from recsys_io.mongo import BESTSELLERS, HISTORY, PRODUCTS, RECOMMENDATIONS, SIMILAR_ITEMS
from tests.support.api import NOW, api_client, bestsellers, history, product

CATALOG = [(f"e{i}", "electronics") for i in range(8)] + [(f"b{i}", "books") for i in range(8)]


@pytest.fixture
def shop(mongo_db):
    mongo_db[PRODUCTS].insert_many([product(p, c) for p, c in CATALOG])
    mongo_db[BESTSELLERS].insert_many(
        [
            bestsellers("global", [(f"g{i}", 100 - i) for i in range(10)]),
            bestsellers("electronics", [(f"e{i}", 50 - i) for i in range(8)]),
            bestsellers("books", [(f"b{i}", 40 - i) for i in range(8)]),
        ]
    )
    mongo_db[SIMILAR_ITEMS].insert_one(
        {"_id": "e0", "product_id": "e0", "neighbours": [{"product_id": f"e{i}", "score": 1.0} for i in range(1, 8)]}
    )
    return mongo_db


def recommendations(user: str, items: list[dict], strategy: str = "realtime") -> dict:
    return {
        "_id": user,
        "user_id": user,
        "items": items,
        "strategy": strategy,
        "model_version": "v3",
        "computed_at": NOW,
    }


def reasons(body: dict) -> list[tuple[str, dict]]:
    return [(item["product_id"], item["reason"]) for item in body["items"]]


def test_every_list_gets_its_own_rec_id_and_its_impression_reaches_the_events_topic(settings, shop, events_topic):
    shop[HISTORY].insert_one(history("u1", ["e1", "e2", "e3", "e4", "e5"]))
    shop[RECOMMENDATIONS].insert_one(recommendations("u1", [{"product_id": f"b{i}", "score": 1.0} for i in range(6)]))
    routes = {
        ("history", "u1"): ("/v1/users/u1/history", {}),
        ("bestsellers", "u1"): ("/v1/users/u1/bestsellers", {}),
        ("recommendations", "u1"): ("/v1/users/u1/recommendations", {}),
        ("shop_bestsellers", None): ("/v1/bestsellers", {}),
        ("similar", None): ("/v1/products/e0/similar", {}),
        ("history", "u2"): ("/api/v1/user_nav_history_latest_products", {"user-id": "u2"}),
        ("bestsellers", "u3"): ("/api/v1/user_history_recommendations", {"user-id": "u3"}),
    }
    with api_client(settings) as client:
        bodies = {key: client.get(path, headers=headers).json() for key, (path, headers) in routes.items()}
        again = client.get("/v1/users/u1/history").json()
    rec_ids = [body["rec_id"] for body in bodies.values()] + [again["rec_id"]]
    assert len(set(rec_ids)) == len(rec_ids)
    records = events_topic.read(len(rec_ids), impressions=True)
    impressions = {r.value["rec_id"]: (r.key, r.value) for r in records if r.value["type"] == "impression"}
    assert set(impressions) == set(rec_ids)
    for (surface, user), body in bodies.items():
        key, impression = impressions[body["rec_id"]]
        assert (impression["surface"], impression["user_id"], impression["products"]) == (
            surface,
            user,
            body["products"],
        )
        assert impression["strategy"] == body.get("strategy", impression["strategy"])
        assert impression["event_id"] == body["rec_id"] and key == (user or body["rec_id"])
        assert (impression["experiment"], impression["variant"]) == (None, None)
    assert impressions[bodies[("recommendations", "u1")]["rec_id"]][1]["model_version"] == "v3"


def test_clicks_name_any_list_and_clients_may_not_post_impressions(settings, events_topic, unique):
    user = f"u-{unique}"
    click = {"type": "click", "user_id": user, "product_id": "p1", "rec_id": "a-list-older-than-the-lake"}
    impression = {"type": "impression", "user_id": user, "rec_id": "r", "surface": "history", "products": []}
    with api_client(settings) as client:
        accepted = client.post("/v1/events", json=click)
        refused = client.post("/v1/events", json={"events": [click, impression]})
        no_list = client.post("/v1/events", json={**click, "rec_id": None})
    assert accepted.status_code == 202
    assert refused.status_code == 400 and refused.json()["error"]["details"] == [
        {"index": 1, "field": "type", "reason": "impression is not a client event"}
    ]
    assert no_list.status_code == 422 and no_list.json()["error"]["details"][0]["field"] == "rec_id"
    records = [r.value for r in events_topic.read(1) if r.key == user]
    assert [(r["type"], r["product_id"], r["rec_id"]) for r in records] == [
        ("click", "p1", "a-list-older-than-the-lake")
    ]


def test_each_product_of_every_surface_says_why_it_is_there(settings, shop):
    shop[HISTORY].insert_one(history("u1", ["e1", "b1", "e2", "b2", "e3"]))
    stored = [
        {"product_id": "b5", "score": 0.9, "reason": {"kind": "viewed", "product_id": "b1"}},
        {"product_id": "e6", "score": 0.8, "reason": {"kind": "model", "product_id": "e1"}},
        *({"product_id": f"g{i}", "score": 0.1, "reason": {"kind": "bestseller"}} for i in range(3)),
    ]
    shop[RECOMMENDATIONS].insert_one(recommendations("u1", stored))
    shop[RECOMMENDATIONS].insert_one(
        recommendations("old", [{"product_id": f"b{i}", "score": 1.0} for i in range(5)], "als")
    )
    with api_client(settings) as client:
        viewed = client.get("/v1/users/u1/history").json()
        category = client.get("/v1/users/u1/bestsellers", params={"limit": 3}).json()
        shop_wide = client.get("/v1/users/stranger/bestsellers", params={"limit": 5}).json()
        recommended = client.get("/v1/users/u1/recommendations").json()
        older = client.get("/v1/users/old/recommendations").json()
        similar = client.get("/v1/products/e0/similar", params={"limit": 5}).json()
        books = client.get("/v1/bestsellers", params={"category": "books", "limit": 5}).json()
    assert [(p, r["kind"], r["product_id"]) for p, r in reasons(viewed)] == [
        (p, "viewed", p) for p in viewed["products"]
    ]
    assert all(r["viewed_at"].startswith(NOW.strftime("%Y-%m-%d")) for _, r in reasons(viewed))
    assert reasons(category) == [
        ("e0", {"kind": "category_bestseller", "category_id": "electronics"}),
        ("e1", {"kind": "category_bestseller", "category_id": "electronics"}),
        ("e2", {"kind": "category_bestseller", "category_id": "electronics"}),
    ]
    assert {r["kind"] for _, r in reasons(shop_wide)} == {"bestseller"}
    assert [r for _, r in reasons(recommended)] == [item["reason"] for item in stored]
    assert {r["kind"] for _, r in reasons(older)} == {"model"}  # stored before reasons were kept
    assert [r for _, r in reasons(similar)] == [{"kind": "similar", "product_id": "e0"}] * 5
    assert {r["category_id"] for _, r in reasons(books)} == {"books"}


def test_exclude_and_category_narrow_a_shoppers_lists_before_the_minimum_applies(settings, shop):
    shop[HISTORY].insert_one(history("u1", ["e1", "b1"], purchased=["b7"]))
    shop[RECOMMENDATIONS].insert_one(
        recommendations("u1", [{"product_id": p, "score": 1.0} for p in ["e5", "b6", "e6", "b5", "e7", "b4", "e3"]])
    )
    with api_client(settings) as client:

        def get(route: str, **params) -> dict:
            return client.get(f"/v1/users/u1/{route}", params=params).json()

        excluding = get("recommendations", exclude="e5, b6")
        too_few = get("recommendations", exclude="e5,b6,e6")
        electronics = get("recommendations", category="electronics")
        books = get("recommendations", category="books")
        bestsellers_books = get("bestsellers", category="books", exclude="b0,b1")
        bestsellers_excluding = get("bestsellers", exclude="e0,e1,e2,e3,b0")
        too_many = client.get("/v1/users/u1/recommendations", params={"exclude": ",".join(f"p{i}" for i in range(101))})
        too_long = client.get("/v1/users/u1/bestsellers", params={"exclude": "x" * 129})
        bad_category = client.get("/v1/users/u1/bestsellers", params={"category": ""})
    assert excluding["products"] == ["e6", "b5", "e7", "b4", "e3"] and excluding["strategy"] == "realtime"
    # Four left: the fallback, the shopper's category bestsellers minus the excluded and the bought.
    assert too_few["strategy"] == "category_bestsellers"
    assert not {"e5", "b6", "e6", "b7"} & set(too_few["products"]) and len(too_few["products"]) == 10
    # Four of the electronics are recommended, below the minimum: that category's bestsellers.
    assert electronics["strategy"] == "category_bestsellers" and electronics["products"] == [f"e{i}" for i in range(8)]
    assert books["strategy"] == "category_bestsellers" and "b7" not in books["products"]
    assert bestsellers_books["products"] == [f"b{i}" for i in range(2, 8)]
    assert {r["category_id"] for _, r in reasons(bestsellers_books)} == {"books"}
    assert not {"e0", "e1", "e2", "e3", "b0"} & set(bestsellers_excluding["products"])
    for response, field in ((too_many, "exclude"), (too_long, "exclude"), (bad_category, "category")):
        assert response.status_code == 400, response.text
        assert set(response.json()["error"]) == {"code", "message", "details"}
        assert response.json()["error"]["details"][0]["field"] == field
