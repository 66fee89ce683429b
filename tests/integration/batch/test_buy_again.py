"""Products bought again: the lists computed in Spark tasks from the orders, and blended into the
recommendations the API serves with the reason `buy_again`."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import timedelta

import pytest
from dagster import DagsterInstance, materialize

from recsys_assets.definitions import build_assets
from recsys_assets.resources import build_resources
from recsys_core.documents import GLOBAL_SCOPE
from recsys_io.mongo import (
    BESTSELLERS,
    BLEND_WEIGHTS,
    BUY_AGAIN,
    MODELS,
    RECOMMENDATIONS,
    async_mongo_client,
    serving_db,
)
from tests.support.api import NOW, api_client

pytestmark = pytest.mark.integration

ORDERS = [  # (order, shopper, product, days ago)
    ("o1", "u1", "milk", 20),
    ("o1", "u1", "tv", 20),
    ("o2", "u1", "milk", 10),
    ("o3", "u1", "milk", 1),
    ("o4", "u2", "milk", 5),
    ("o5", "u2", "milk", 2),
    ("o6", "u3", "tv", 3),
    ("o7", "u3", "bread", 9),
    ("o8", "u3", "bread", 8),
    ("o8", "u3", "eggs", 8),
]


def materialized(settings, spark, orders, selection):
    """`selection` materialised on an orders table of (order, shopper, product, days ago)."""
    from pyspark.sql import Row

    rows = [
        Row(order_id=o, user_id=u, product_id=p, quantity=1, price=2.5, ts=NOW - timedelta(days=d))
        for o, u, p, d in orders
    ]
    spark.createDataFrame(rows).write.format("delta").save(str(settings.lake_dir / "orders"))
    result = materialize(
        build_assets(settings),
        selection=selection,
        instance=DagsterInstance.ephemeral(),
        resources=build_resources(settings),
    )
    assert result.success
    return result


@pytest.fixture
def lists(settings, spark, mongo_db):
    return mongo_db, materialized(settings, spark, ORDERS, ["buy_again_lists"])


def test_each_shopper_gets_their_own_purchases_that_shoppers_buy_again_most_frequent_first(lists):
    db, result = lists
    stored = {d["_id"]: [i["product_id"] for i in d["items"]] for d in db[BUY_AGAIN].find()}
    # milk and bread are bought again by their buyers, tv and eggs never.
    assert stored == {"u1": ["milk"], "u2": ["milk"], "u3": ["bread"]}
    metadata = result.asset_materializations_for_node("buy_again_lists")[0].metadata
    assert metadata["products_bought_again"].value == 2 and metadata["lists_not_empty"].value == 3


def test_recommendations_blend_the_shoppers_buy_again_list_by_the_weight_with_its_reason(lists, settings):
    db, _ = lists
    items = [{"product_id": f"p{i}", "score": 1.0, "reason": {"kind": "model"}} for i in range(6)]
    db[RECOMMENDATIONS].insert_one(
        {"_id": "u1", "user_id": "u1", "items": items, "strategy": "als", "model_version": "v1", "computed_at": NOW}
    )
    with api_client(settings) as client:
        alone = client.get("/v1/users/u1/recommendations").json()
    with api_client(settings, buy_again_weight=0.5) as client:
        blended = client.get("/v1/users/u1/recommendations").json()
        excluded = client.get("/v1/users/u1/recommendations", params={"exclude": "milk"}).json()
    assert alone["products"] == [f"p{i}" for i in range(6)]
    assert blended["products"] == ["milk", "p0", "p1", "p2", "p3", "p4", "p5"]
    assert blended["items"][0]["reason"] == {"kind": "buy_again"}
    assert {item["reason"]["kind"] for item in blended["items"][1:]} == {"model"}
    assert "milk" not in excluded["products"]


def test_a_shopper_without_recommendations_gets_buy_again_blended_into_the_bestsellers(lists, settings):
    db, _ = lists
    db[BESTSELLERS].insert_one(
        {"_id": GLOBAL_SCOPE, "products": [{"product_id": f"b{i}", "buyers": 9 - i} for i in range(6)]}
    )
    with api_client(settings, buy_again_weight=0.5) as client:
        served = client.get("/v1/users/u3/recommendations").json()
    assert served["products"] == ["bread", "b0", "b1", "b2", "b3", "b4", "b5"]
    assert [item["reason"]["kind"] for item in served["items"][:2]] == ["buy_again", "bestseller"]


def weekly_orders(staples: bool) -> list[tuple[str, str, str, int]]:
    """6 shoppers with 4 weekly orders of 2 of 8 shared products (none twice by one shopper) and, with
    `staples`, their own staple in every order."""
    orders = []
    for u in range(6):
        for week in range(4):
            order, days = f"o{u}-{week}", (4 - week) * 7 - u
            products = [f"p{(2 * week + u) % 8}", f"p{(2 * week + u + 1) % 8}"]
            orders += [(order, f"u{u}", p, days) for p in [*products, *([f"staple{u}"] if staples else [])]]
    return orders


def model_document(user_id: str) -> dict:
    items = [{"product_id": f"m{i}", "score": 1.0, "reason": {"kind": "model"}} for i in range(6)]
    return {"_id": user_id, "user_id": user_id, "items": items, "strategy": "als", "model_version": "v1"}


def test_the_weight_chosen_on_the_shops_repeat_orders_is_served_unless_the_setting_says_otherwise(
    settings, spark, mongo_db
):
    # The current model is a small ALS, which learns the shared products and not each shopper's staple:
    # its list is the one the weight is chosen for, and buy_again adds the staples.
    params = {"rank": 2, "max_iter": 5}
    mongo_db[MODELS].insert_one({"_id": "v1", "family": "als", "params": params, "promoted": True, "promoted_at": NOW})
    result = materialized(settings, spark, weekly_orders(staples=True), ["buy_again_weight"])
    record = mongo_db[BLEND_WEIGHTS].find_one({"_id": "buy_again"})
    ndcg = {entry["weight"]: entry["ndcg"] for entry in record["validation_ndcg"]}
    assert record["weight"] > 0 and ndcg[record["weight"]] > ndcg[0.0]
    assert record["weight"] == min(ndcg, key=lambda w: (-ndcg[w], w))
    metadata = result.asset_materializations_for_node("buy_again_weight")[0].metadata
    assert metadata["weight"].value == record["weight"]
    assert metadata["share_of_products_bought_again"].value == pytest.approx(6 / 14)  # the staples of 14 products
    mongo_db[RECOMMENDATIONS].insert_one(model_document("u1"))
    mongo_db[BUY_AGAIN].insert_one({"_id": "u1", "items": [{"product_id": "staple1", "score": 2.0}]})
    with api_client(settings) as client:  # RECSYS_BUY_AGAIN_WEIGHT unset: the recorded weight
        served = client.get("/v1/users/u1/recommendations").json()
    with api_client(settings, buy_again_weight=0.0) as client:
        alone = client.get("/v1/users/u1/recommendations").json()
    assert served["products"][0] == "staple1" and served["items"][0]["reason"] == {"kind": "buy_again"}
    assert alone["products"] == [f"m{i}" for i in range(6)]


def test_a_shop_whose_products_nobody_buys_twice_records_weight_0_without_fitting_a_model(settings, spark, mongo_db):
    result = materialized(settings, spark, weekly_orders(staples=False), ["buy_again_weight"])
    record = mongo_db[BLEND_WEIGHTS].find_one({"_id": "buy_again"})
    assert record["weight"] == 0.0 and record["validation_ndcg"] == []
    assert result.asset_materializations_for_node("buy_again_weight")[0].metadata["weight"].value == 0.0
    mongo_db[RECOMMENDATIONS].insert_one(model_document("u1"))
    mongo_db[BUY_AGAIN].insert_one({"_id": "u1", "items": [{"product_id": "p1", "score": 1.0}]})
    with api_client(settings) as client:
        served = client.get("/v1/users/u1/recommendations").json()
    assert served["products"] == [f"m{i}" for i in range(6)]


def test_a_store_that_does_not_answer_the_weights_read_fails_no_list_the_weight_is_then_0(settings):
    from recsys_api import blend

    async def weights() -> tuple[float, float]:
        client = async_mongo_client(dataclasses.replace(settings, mongo_port=1), serverSelectionTimeoutMS=200)
        try:
            db = serving_db(client, settings)
            return await blend.buy_again_weight(db, None), await blend.buy_again_weight(db, 0.5)
        finally:
            await client.close()

    assert asyncio.run(weights()) == (0.0, 0.5)
