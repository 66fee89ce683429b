"""Writes beside events: catalog upserts, deleting from a history, and the compatibility routes."""

from __future__ import annotations

from recsys_io.mongo import BESTSELLERS, HISTORY, PRODUCTS
from tests.support.api import TopicReader, api_client, bestsellers, history, product, untraced


def test_catalog_upsert_is_servable_at_once_and_written_to_the_catalog_topic(settings, mongo_db, unique):
    reader = TopicReader(settings, settings.topics.catalog)
    items = [
        {
            "product_id": f"{unique}-1",
            "category_id": "c1",
            "name": "Lamp",
            "price": 10,
            "attributes": {"colour": "red"},
        },
        {"product_id": f"{unique}-2", "category_id": "c2"},
    ]
    try:
        with api_client(settings) as client:
            assert client.put("/v1/products", json=items).json() == {
                "upserted": 2,
                "product_ids": [f"{unique}-1", f"{unique}-2"],
            }
            served = client.get(f"/v1/products/{unique}-1").json()
            # An upsert replaces the product: the name is gone, the category changed.
            client.put("/v1/products", json=[{"product_id": f"{unique}-1", "category_id": "c3"}])
            replaced = client.get(f"/v1/products/{unique}-1").json()
        records = [r for r in reader.read(3) if r.key.startswith(unique)]
    finally:
        reader.close()
    assert (served["name"], served["price"], served["attributes"]) == ("Lamp", 10.0, {"colour": "red"})
    assert (replaced["category_id"], replaced["name"]) == ("c3", None)
    assert [(r.key, r.value["category_id"]) for r in records] == [
        (f"{unique}-1", "c1"),
        (f"{unique}-2", "c2"),
        (f"{unique}-1", "c3"),
    ]
    assert mongo_db[PRODUCTS].count_documents({}) == 2


def test_catalog_with_an_invalid_item_writes_nothing(settings, mongo_db):
    items = [{"product_id": "ok", "category_id": "c1"}, {"product_id": "bad", "price": "cheap"}, 42]
    with api_client(settings) as client:
        response = client.put("/v1/products", json=items)
        empty = client.put("/v1/products", json=[])
        not_a_list = client.put("/v1/products", json={"product_id": "x"})
    assert response.status_code == 422
    assert [(d["index"], d["field"]) for d in response.json()["error"]["details"]] == [
        (1, "category_id"),
        (1, "price"),
        (2, ""),
    ]
    assert empty.status_code == 422 and not_a_list.status_code == 400
    assert mongo_db[PRODUCTS].count_documents({}) == 0


def test_catalog_bodies_may_be_up_to_10_mib_unlike_events(settings, mongo_db, unique):
    items = [{"product_id": f"{unique}-{i}", "category_id": "c", "description": "d" * 15_000} for i in range(150)]
    with api_client(settings) as client:
        two_mib = client.put("/v1/products", json=items)
        as_events = client.post("/v1/events", json={"events": items})
        too_big = client.put(
            "/v1/products",
            content=b"[" + b" " * (11 * 1024 * 1024) + b"]",
            headers={"content-type": "application/json"},
        )
    assert two_mib.status_code == 200 and two_mib.json()["upserted"] == 150
    assert as_events.status_code == 413 and too_big.status_code == 413
    assert mongo_db[PRODUCTS].count_documents({}) == 150


def test_deleting_a_product_removes_it_from_history_at_once_and_records_the_deletion(
    settings, mongo_db, events_topic, unique
):
    user = f"u-{unique}"
    mongo_db[HISTORY].insert_one(history(user, ["a", "b", "c", "d", "e", "f"]))
    with api_client(settings) as client:
        assert client.delete(f"/v1/users/{user}/history/c").status_code == 204
        assert client.get(f"/v1/users/{user}/history").json()["products"] == ["a", "b", "d", "e", "f"]
        assert client.delete(f"/v1/users/{user}/history/never-seen").status_code == 204
        assert client.delete(f"/v1/users/{user}-new/history/a").status_code == 204
    doc = mongo_db[HISTORY].find_one({"_id": user})
    assert doc["product_ids"] == ["a", "b", "d", "e", "f"]
    assert set(doc["deleted"]) == {"c", "never-seen"}
    assert set(mongo_db[HISTORY].find_one({"_id": f"{user}-new"})["deleted"]) == {"a"}
    events = [r.value for r in events_topic.read(3) if r.key.startswith(user)]
    # Keyed by user: one user's events keep their order, two users' may interleave.
    assert sorted((e["type"], e["user_id"], e["product_id"]) for e in events) == [
        ("history_delete", user, "c"),
        ("history_delete", user, "never-seen"),
        ("history_delete", f"{user}-new", "a"),
    ]


def test_deleting_keeps_the_arrival_order_of_views_of_one_millisecond(settings, mongo_db, unique):
    """The stream stores the arrival position of each view; the API's rewrite of the document keeps it."""
    user = f"u-{unique}"
    doc = history(user, list("fedcba"))
    doc["viewed_at"] = [doc["viewed_at"][0]] * 6
    doc["viewed_seq"] = [16, 15, 14, 13, 12, 11]  # f arrived last: product-id order would be the reverse
    mongo_db[HISTORY].insert_one(doc)
    with api_client(settings, min_list_size=1) as client:
        assert client.get(f"/v1/users/{user}/history").json()["products"] == list("fedcba")
        assert client.delete(f"/v1/users/{user}/history/c").status_code == 204
        assert client.get(f"/v1/users/{user}/history").json()["products"] == list("fedba")
    assert mongo_db[HISTORY].find_one({"_id": user})["viewed_seq"] == [16, 15, 14, 12, 11]


def test_product_ids_that_look_like_paths_or_operators_are_deleted_too(settings, mongo_db, unique):
    user = f"u-{unique}"
    odd = ["v1.2", "$set", "a", "b", "c", "d"]
    mongo_db[HISTORY].insert_one(history(user, odd))
    with api_client(settings, min_list_size=1) as client:
        assert client.delete(f"/v1/users/{user}/history/v1.2").status_code == 204
        assert client.delete(f"/v1/users/{user}/history/$set").status_code == 204
        assert client.get(f"/v1/users/{user}/history").json()["products"] == ["a", "b", "c", "d"]
        blank = client.delete(f"/v1/users/{user}/history/%20")
    assert blank.status_code == 422 and blank.json()["error"]["details"][0]["field"] == "product_id"
    assert len(mongo_db[HISTORY].find_one({"_id": user})["deleted"]) == 2


def test_a_view_older_than_its_deletion_never_comes_back(settings, mongo_db, unique):
    user = f"u-{unique}"
    with api_client(settings, min_list_size=1) as client:
        client.delete(f"/v1/users/{user}/history/a")
        # A stale writer puts back the old view (its ts is before the deletion): it stays hidden.
        doc = mongo_db[HISTORY].find_one({"_id": user})
        stale = history(user, ["b", "a"])
        mongo_db[HISTORY].update_one(
            {"_id": user}, {"$set": {"product_ids": stale["product_ids"], "viewed_at": stale["viewed_at"]}}
        )
        assert doc["deleted"]["a"] > history(user, ["a"])["viewed_at"][0]
        assert client.get(f"/v1/users/{user}/history").json()["products"] == ["b"]


def test_deleting_from_a_history_in_the_earlier_shape_rewrites_it_in_the_new_one(settings, mongo_db, unique):
    user = f"u-{unique}"
    earlier = history(user, ["a", "b", "c"])
    earlier["items"] = [
        {"product_id": p, "ts": ts} for p, ts in zip(earlier.pop("product_ids"), earlier.pop("viewed_at"))
    ]
    mongo_db[HISTORY].insert_one(earlier)
    with api_client(settings, min_list_size=1) as client:
        assert client.get(f"/v1/users/{user}/history").json()["products"] == ["a", "b", "c"]
        assert client.delete(f"/v1/users/{user}/history/b").status_code == 204
    doc = mongo_db[HISTORY].find_one({"_id": user})
    assert doc["product_ids"] == ["a", "c"] and "items" not in doc


def test_compat_routes_use_headers_and_the_same_rules(settings, mongo_db, events_topic, unique):
    user = f"u-{unique}"
    mongo_db[PRODUCTS].insert_many([product(p, "c1") for p in "abcdef"])
    mongo_db[BESTSELLERS].insert_one(bestsellers("c1", [(p, 10 - i) for i, p in enumerate("fedcba")]))
    mongo_db[HISTORY].insert_one(history(user, list("abcdef")))
    path = "/api/v1/user_nav_history_latest_products/"
    with api_client(settings) as client:
        assert untraced(client.get(path, headers={"user-id": user}).json()) == {
            "user-id": user,
            "products": list("abcde") + ["f"],
            "type": "personalized",
        }
        assert client.delete(path, headers={"user-id": user, "product-id": "b"}).status_code == 204
        assert client.get(path, headers={"user-id": user}).json()["products"] == list("acdef")
        recommended = client.get("/api/v1/user_history_recommendations/", headers={"user-id": user}).json()
        stranger = client.get("/api/v1/user_history_recommendations", headers={"user-id": "nobody"}).json()
        missing_user = client.get(path)
        missing_product = client.delete(path, headers={"user-id": user})
    assert untraced(recommended) == {"user-id": user, "products": list("fedcba"), "type": "personalized"}
    assert untraced(stranger) == {"user-id": "nobody", "products": [], "type": "non-personalized"}
    for response in (missing_user, missing_product):
        assert response.status_code == 400 and response.json()["error"]["code"] == "bad_request"
    assert [r.value["product_id"] for r in events_topic.read(1) if r.key == user] == ["b"]
