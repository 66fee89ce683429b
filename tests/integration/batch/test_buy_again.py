"""Products bought again: the lists computed in Spark tasks from the orders, and blended into the
recommendations the API serves with the reason `buy_again`."""

from __future__ import annotations

from datetime import timedelta

import pytest
from dagster import DagsterInstance, materialize

from recsys_assets.definitions import build_assets
from recsys_assets.resources import build_resources
from recsys_core.documents import GLOBAL_SCOPE
from recsys_io.mongo import BESTSELLERS, BUY_AGAIN, RECOMMENDATIONS
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


@pytest.fixture
def lists(settings, spark, mongo_db):
    from pyspark.sql import Row

    rows = [
        Row(order_id=o, user_id=u, product_id=p, quantity=1, price=2.5, ts=NOW - timedelta(days=d))
        for o, u, p, d in ORDERS
    ]
    spark.createDataFrame(rows).write.format("delta").save(str(settings.lake_dir / "orders"))
    result = materialize(
        build_assets(settings),
        selection=["buy_again_lists"],
        instance=DagsterInstance.ephemeral(),
        resources=build_resources(settings),
    )
    assert result.success
    return mongo_db, result


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
