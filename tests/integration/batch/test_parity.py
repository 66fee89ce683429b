"""The batch layer's Spark code gives exactly what the domain's rules give, on the same random data.

Interactions: the asset applies recsys_core.interactions on the executors, so this checks the
plumbing around it (purchases' items, time zones, tombstones, as_of). Bestsellers have a Spark SQL
form of recsys_core.bestsellers, so this is a parity test of two implementations. The evaluation
applies recsys_core.metrics' split and metrics in tasks: the same figures as on the driver. The data is
drawn from a seeded generator, with ties everywhere: events at the same instant (a delete and a
view of one pair among them), products with the same number of buyers, lines exactly at either
end of the window and just outside it.
"""

from __future__ import annotations

import random
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from dagster import materialize
from pyspark.sql import functions as F

from recsys_assets.als_training import AlsParams
from recsys_assets.bestsellers import bestseller_frames
from recsys_assets.definitions import build_assets
from recsys_assets.evaluation import evaluate_split, frame_of, split_frame
from recsys_assets.records import EVENT_COLUMNS, LIST_FIELDS
from recsys_assets.resources import build_resources
from recsys_core.bestsellers import OrderLine, category_bestsellers, rank_bestsellers
from recsys_core.interactions import interaction_strengths
from recsys_core.metrics import (
    Interaction,
    beyond_accuracy,
    evaluate,
    popularity_ranking,
    recommend_popular,
    seen_items,
    split_interactions,
)

pytestmark = pytest.mark.integration

AS_OF = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
RAW_EVENTS = EVENT_COLUMNS.replace("ts_ms long", "ts timestamp") + ", day date"
ORDER_LINES = "order_id string, user_id string, product_id string, quantity int, price double, ts timestamp"


def random_events(rng: random.Random, count: int) -> list[dict]:
    """Canonical events of a few shoppers and products over three weeks around AS_OF."""
    # 300 instants for `count` events: many events share one, a few come after AS_OF.
    first = AS_OF - timedelta(days=20)
    instants = [
        first + timedelta(seconds=rng.randrange(21 * 86400), milliseconds=rng.randrange(1000)) for _ in range(300)
    ]
    users, products = [f"u{i}" for i in range(30)], [f"p{i}" for i in range(20)]
    # Clicks are kept in the lake but are no taste: the rule and the asset must both pass them by.
    kinds = ["product_view"] * 6 + ["add_to_cart"] * 2 + ["purchase", "rating", "history_delete", "click"]
    events = []
    for _ in range(count):
        kind, user, ts = rng.choice(kinds), rng.choice(users), rng.choice(instants)
        event = {
            "event_id": str(uuid.UUID(int=rng.getrandbits(128))),
            "type": kind,
            "user_id": user,
            "ts": ts,
            "product_id": rng.choice(products),
            "source": None,
            "quantity": None,
            "score": None,
            "order_id": None,
            "items": None,
        }
        if kind == "purchase":  # a product may appear twice in one order
            event.update(
                product_id=None,
                order_id=event["event_id"],
                items=[
                    {"product_id": rng.choice(products), "quantity": 1, "price": 2.0} for _ in range(rng.randint(1, 3))
                ],
            )
        elif kind == "rating":
            event["score"] = rng.randint(1, 10) / 2
        elif kind == "add_to_cart":
            event["quantity"] = 1
        elif kind == "click":
            event["rec_id"] = f"r{rng.randrange(5)}"
        events.append(event)
    return events


def test_interactions_asset_equals_the_domain_rule_on_random_events(settings, spark):
    events = random_events(random.Random(11), 900)
    rows = [
        (
            e["event_id"],
            e["type"],
            e["user_id"],
            e["ts"],
            e["product_id"],
            e["source"],
            e["quantity"],
            e["score"],
            e["order_id"],
            [(i["product_id"], i["quantity"], i["price"]) for i in e["items"]] if e["items"] else None,
            *(e.get(name) for name in LIST_FIELDS),
            e["ts"].date(),
        )
        for e in events
    ]
    spark.createDataFrame(rows, RAW_EVENTS).write.format("delta").save(str(settings.lake_dir / "raw_events"))
    options = {"view_weight": 1.5, "add_to_cart_weight": 3.0, "purchase_weight": 5.0, "half_life_days": 7.0}

    materialize(
        build_assets(settings),
        selection=["interactions"],
        resources=build_resources(settings),
        run_config={"ops": {"interactions": {"config": {"as_of": AS_OF.isoformat(), **options}}}},
    )

    table = spark.read.format("delta").load(str(settings.lake_dir / "interactions"))
    got = {
        (r.user_id, r.product_id): (r.strength, EPOCH + timedelta(microseconds=r.last_us), r.events)
        for r in table.select("*", F.unix_micros("last_ts").alias("last_us")).collect()
    }
    weights = {"product_view": 1.5, "add_to_cart": 3.0, "purchase": 5.0}
    expected = {
        pair: (found.strength, found.last_ts, found.events)
        for pair, found in interaction_strengths(events, AS_OF, weights, half_life_days=7.0).items()
    }
    assert len(expected) > 150
    assert got == expected


def random_order_lines(rng: random.Random, count: int) -> list[OrderLine]:
    start, end = AS_OF - timedelta(days=30), AS_OF
    edges = [start, end, start - timedelta(seconds=1), end + timedelta(seconds=1), start + timedelta(seconds=1)]
    products = [(f"p{i:03d}", f"c{i % 7}" if i % 11 else None) for i in range(160)]  # some outside the catalog
    lines = []
    for _ in range(count):
        product_id, category_id = rng.choice(products)
        ts = (
            rng.choice(edges)
            if rng.random() < 0.1
            else start - timedelta(days=3) + timedelta(seconds=rng.randrange(36 * 86400))
        )
        lines.append(OrderLine(f"u{rng.randrange(25)}", product_id, ts, category_id))
    return lines


@pytest.mark.parametrize("limit", [100, 4])
def test_spark_bestsellers_equal_the_domain_rule_on_random_order_lines(spark, limit):
    lines = random_order_lines(random.Random(5), 700)
    orders = spark.createDataFrame(
        [(f"o{i}", line.user_id, line.product_id, 1, 2.0, line.ts) for i, line in enumerate(lines)], ORDER_LINES
    )
    catalog = sorted({(line.product_id, line.category_id) for line in lines if line.category_id is not None})
    categories = spark.createDataFrame(catalog, "product_id string, category_id string")

    overall, per_category = bestseller_frames(orders, categories, AS_OF, 30, limit)

    expected_overall = rank_bestsellers(lines, AS_OF, 30, limit)
    assert [
        {"product_id": r.product_id, "buyers": r.buyers} for r in overall.orderBy("rank").collect()
    ] == expected_overall
    got: dict[str, list] = {}
    for r in per_category.orderBy("category_id", "rank").collect():
        got.setdefault(r.category_id, []).append({"product_id": r.product_id, "buyers": r.buyers})
    assert got == category_bestsellers(lines, AS_OF, 30, limit)
    buyers = [entry["buyers"] for entry in rank_bestsellers(lines, AS_OF, 30, 1000)]
    assert len(buyers) > limit and buyers[limit - 1] == buyers[limit]  # the cut falls inside a tie


def random_interactions(rng: random.Random) -> list[Interaction]:
    """Interactions of shoppers with 1 to 12 products each, some at the same instant."""
    rows = []
    for user in range(40):
        for item in rng.sample(range(30), rng.randint(1, 12)):
            rows.append(Interaction(f"u{user}", f"p{item}", float(rng.randint(1, 5)), float(rng.randrange(20))))
    return rows


@pytest.mark.parametrize("how", ["random", "time"])
def test_the_split_in_spark_tasks_is_the_domains_split(spark, how):
    rows = random_interactions(random.Random(5))
    split = split_frame(frame_of(spark, rows).repartition(4), how)
    train, test = split_interactions(rows, how)
    found = split.collect()

    def rows_of(part, held_out):
        return {(r.user_id, r.item_id, r.weight, r.ts) for r in part if getattr(r, "held_out", held_out) == held_out}

    assert rows_of(found, False) == rows_of(train, False)
    assert rows_of(found, True) == rows_of(test, True)


def test_metrics_computed_in_spark_tasks_are_the_domains_metrics(spark):
    rows = random_interactions(random.Random(6))
    category_of = {f"p{i}": f"c{i % 4}" for i in range(0, 30, 2)}  # half the products have a category
    categories = spark.createDataFrame(list(category_of.items()), "item_id string, category_id string")
    split = split_frame(frame_of(spark, rows).repartition(3))
    result = evaluate_split(split, AlsParams(rank=4, max_iter=3), k=5, categories=categories)
    train, test = split_interactions(rows)
    truth: dict[str, set[str]] = {}
    for r in test:
        truth.setdefault(r.user_id, set()).add(r.item_id)
    popular = recommend_popular(popularity_ranking(train), seen_items(train), truth, k=5)
    users = len({r.user_id for r in train})
    share = {item: n / users for item, n in Counter(r.item_id for r in train).items()}  # one row per pair
    expected = {
        **evaluate(popular, truth, k=5),
        **beyond_accuracy(popular, share, category_of, len({r.item_id for r in rows})),
    }
    assert result["popularity"] == pytest.approx(expected)
    assert set(result["als"]) == set(expected) and all(0 <= v <= 1 for v in result["als"].values())
