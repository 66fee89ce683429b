"""The whole batch graph on real Kafka, Spark + Delta and Mongo, with planted structure.

Two groups of shoppers browse and buy two disjoint groups of products; the larger group makes its
products the most popular overall, so the popularity baseline serves the smaller group the wrong
products while ALS serves them their own. The graph is materialised once for the module.

The groups (30 and 60 shoppers) are large enough that ALS wins whatever ids the run draws
(docs/batch.md says how that was measured).
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from dagster import DagsterInstance, materialize

from recsys_assets.definitions import all_checks, build_assets
from recsys_assets.resources import build_resources
from recsys_io.kafka import make_producer
from recsys_io.mongo import mongo_client, serving_db
from tests.support.batch import event, land, model_config, produce
from tests.support.isolation import isolated, release

pytestmark = pytest.mark.integration

DAY = datetime(2026, 11, 1, tzinfo=UTC)


def planted_events(prefix: str) -> tuple[list[dict], dict]:
    rng = random.Random(7)
    groups = {
        "a": ([f"{prefix}-ua{i}" for i in range(30)], [f"{prefix}-pa{i}" for i in range(10)]),
        "b": ([f"{prefix}-ub{i}" for i in range(60)], [f"{prefix}-pb{i}" for i in range(10)]),
    }
    events = []
    for users, products in groups.values():
        for user in users:
            for product in rng.sample(products, 6):
                events.append(event("product_view", user, product, DAY + timedelta(minutes=rng.randrange(1440))))
    buyer, bought = groups["a"][0][0], groups["a"][1][0]
    events.append(event("purchase", buyer, bought, DAY + timedelta(hours=23)))
    forgotten = (groups["b"][0][0], groups["b"][1][0])
    events.append(event("product_view", *forgotten, DAY + timedelta(hours=1)))
    events.append(event("history_delete", *forgotten, DAY + timedelta(hours=2)))
    return events, {"groups": groups, "buyer": buyer, "bought": bought, "forgotten": forgotten}


def catalog(prefix: str, groups) -> list[dict]:
    words = {"a": "crisp red apple", "b": "sweet blue berry"}
    products = [
        {
            "product_id": p,
            "category_id": f"{prefix}-c{name}",
            "name": f"{words[name]} {i}",
            "description": f"{words[name]} from the orchard",
        }
        for name, (_, ps) in groups.items()
        for i, p in enumerate(ps)
    ]
    products.append(
        {
            "product_id": f"{prefix}-new",
            "category_id": f"{prefix}-ca",
            "name": "red apple juice",
            "description": "pressed from a crisp apple",
        }
    )
    return products


@pytest.fixture(scope="module")
def graph(stack, spark):
    prefix = f"g{random.randrange(10**8)}"
    settings = isolated(stack, "graph")
    events, planted = planted_events(prefix)
    produce(settings, events)
    producer = make_producer(settings)
    for product in catalog(prefix, planted["groups"]):
        producer.send(settings.topics.catalog, key=product["product_id"], value=product)
    producer.flush(30)
    producer.close()
    land(settings, spark)
    instance = DagsterInstance.ephemeral()
    result = materialize(
        build_assets(settings) + all_checks,
        partition_key=DAY.date().isoformat(),
        instance=instance,
        resources=build_resources(settings),
        run_config=model_config(),
    )
    client = mongo_client(settings)
    yield {
        "settings": settings,
        "result": result,
        "db": serving_db(client, settings),
        "prefix": prefix,
        "instance": instance,
        **planted,
    }
    client.close()
    release(settings)


def test_whole_graph_materialises_in_process(graph):
    assert graph["result"].success
    materialized = {e.asset_key.to_user_string() for e in graph["result"].get_asset_materialization_events()}
    assert {
        "raw_events",
        "products",
        "orders",
        "bestsellers",
        "interactions",
        "als_model",
        "current_model",
        "item_similarities",
        "content_similarities",
        "user_recommendations",
    } <= materialized


def test_each_tables_row_count_in_the_ui_is_what_the_table_holds(graph, spark):
    # The figure comes from the overwrite's commit, not from reading the table back.
    tables = (
        "products",
        "orders",
        "interactions",
        "bestsellers",
        "category_bestsellers",
        "item_similarities",
        "content_similarities",
        "user_recommendations",
    )
    shown = {
        e.asset_key.to_user_string(): e.materialization.metadata["dagster/row_count"].value
        for e in graph["result"].get_asset_materialization_events()
        if e.asset_key.to_user_string() in tables
    }
    held = {name: spark.read.format("delta").load(str(graph["settings"].lake_dir / name)).count() for name in tables}
    assert {name: shown[name] for name in tables} == held
    assert all(held.values())


def test_the_chosen_model_beats_popularity_on_planted_structure_and_is_promoted(graph):
    checks = graph["result"].get_asset_check_evaluations()
    assert [c.passed for c in checks if c.check_name == "als_beats_popularity"] == [True]
    current = graph["db"].models.find_one({"promoted": True})
    assert current["checks_passed"] is True and current["family"] in ("als", "ease")
    assert current["metrics"][current["family"]]["ndcg"] > current["metrics"]["popularity"]["ndcg"]
    # Both families were tried; the version is the one with the better NDCG.
    assert current["metrics"][current["family"]]["ndcg"] >= max(current["metrics"][f]["ndcg"] for f in ("als", "ease"))


def test_recommendations_skip_purchased_products_and_name_the_model(graph):
    document = graph["db"].recommendations.find_one({"_id": graph["buyer"]})
    current = graph["db"].models.find_one({"promoted": True})
    assert document["strategy"] == current["family"] and document["model_version"] == current["_id"]
    recommended = [item["product_id"] for item in document["items"]]
    assert graph["bought"] not in recommended
    assert recommended[0].startswith(f"{graph['prefix']}-pa")


def test_deleted_history_item_never_comes_back_after_rebuild(graph, spark):
    user, product = graph["forgotten"]
    path = str(graph["settings"].lake_dir / "interactions")
    rows = spark.read.format("delta").load(path).where(f"user_id = '{user}' and product_id = '{product}'")
    assert rows.count() == 0
    raw = spark.read.format("delta").load(str(graph["settings"].lake_dir / "raw_events"))
    assert raw.where(f"user_id = '{user}' and type = 'history_delete'").count() == 1


def test_cold_start_product_gets_content_neighbours_from_its_description(graph):
    document = graph["db"].similar_items.find_one({"_id": f"{graph['prefix']}-new"})
    assert document["source"] == "content"
    assert document["neighbours"][0]["product_id"].startswith(f"{graph['prefix']}-pa")
    known = graph["db"].similar_items.find_one({"_id": f"{graph['prefix']}-pa1"})
    current = graph["db"].models.find_one({"promoted": True})
    assert known["source"] == current["family"] and len(known["neighbours"]) > 0
