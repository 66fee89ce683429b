"""Bestsellers in Spark equal the hand-computed rule, and reach the serving store."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from dagster import materialize

from recsys_assets.definitions import build_assets
from recsys_assets.resources import build_resources

pytestmark = pytest.mark.integration

AS_OF = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def test_bestsellers_equal_hand_computed_expectation(settings, spark, mongo_db):
    start = AS_OF - timedelta(days=30)
    second = timedelta(seconds=1)
    orders = [
        ("o1", "u1", "p1", 1, 2.0, start + second),  # one second inside the window
        ("o2", "u2", "p2", 1, 2.0, start - second),  # one second outside: not counted
        ("o3", "u3", "p2", 1, 2.0, AS_OF - timedelta(days=2)),
        ("o4", "u3", "p2", 2, 2.0, AS_OF - timedelta(days=1)),  # the same buyer again: counted once
        ("o5", "u4", "p3", 1, 2.0, AS_OF - timedelta(days=3)),
        ("o6", "u5", "p3", 1, 2.0, AS_OF - timedelta(days=3)),
        ("o7", "u6", "p4", 1, 2.0, AS_OF + second),  # after the window's end
    ]
    (
        spark.createDataFrame(
            orders, "order_id string, user_id string, product_id string, quantity int, price double, ts timestamp"
        )
        .write.format("delta")
        .save(str(settings.lake_dir / "orders"))
    )
    catalog = [("p1", "shoes"), ("p2", "shoes"), ("p3", "hats"), ("p4", "hats")]
    (
        spark.createDataFrame(catalog, "product_id string, category_id string")
        .write.format("delta")
        .save(str(settings.lake_dir / "products"))
    )

    materialize(
        build_assets(settings),
        selection=["bestsellers", "category_bestsellers", "bestseller_documents"],
        resources=build_resources(settings),
        run_config={"ops": {"bestseller_tables": {"config": {"as_of": AS_OF.isoformat()}}}},
    )

    documents = {d["_id"]: d["products"] for d in mongo_db.bestsellers.find()}
    assert documents == {
        "global": [
            {"product_id": "p3", "buyers": 2},
            {"product_id": "p1", "buyers": 1},
            {"product_id": "p2", "buyers": 1},
        ],
        "hats": [{"product_id": "p3", "buyers": 2}],
        "shoes": [{"product_id": "p1", "buyers": 1}, {"product_id": "p2", "buyers": 1}],
    }
    assert mongo_db.bestsellers.find_one({"_id": "global"})["window_days"] == 30
