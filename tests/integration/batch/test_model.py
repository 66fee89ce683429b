"""Promotion guards: a model that fails its evaluation check never becomes current; rollback."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from dagster import DagsterInstance, materialize

from recsys_assets.definitions import all_checks, build_assets
from recsys_assets.resources import build_resources
from recsys_io.registry import PromotionRefused, promote_model, rollback_model
from tests.support.batch import model_config

pytestmark = pytest.mark.integration


def test_model_that_fails_its_checks_is_not_promoted(settings, spark, mongo_db, unique):
    # Everyone has the same eight products: the unseen ones are exactly the held-out ones, so ALS
    # can at best tie with popularity, and a tie is not a win.
    rows = [
        (f"{unique}-u{u}", f"{unique}-p{p}", 1.0, datetime(2026, 11, 1, tzinfo=UTC), 1)
        for u in range(10)
        for p in range(8)
    ]
    (
        spark.createDataFrame(
            rows, "user_id string, product_id string, strength double, last_ts timestamp, events long"
        )
        .write.format("delta")
        .save(str(settings.lake_dir / "interactions"))
    )
    result = materialize(
        [*build_assets(settings), *all_checks],
        selection=["als_model", "current_model"],
        instance=DagsterInstance.ephemeral(),
        resources=build_resources(settings),
        run_config=model_config(),
        raise_on_error=False,
    )

    [check] = result.get_asset_check_evaluations()
    assert check.check_name == "als_beats_popularity" and not check.passed
    assert "current_model" not in {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    [model] = list(mongo_db.models.find())
    assert model["checks_passed"] is False and model["promoted"] is False
    with pytest.raises(PromotionRefused, match="did not pass"):
        promote_model(mongo_db, model["_id"])


def _two_tastes(settings, spark, unique):
    """Two groups of shoppers with six products each: a shopper has five of their group's products."""
    rows = [
        (f"{unique}-u{g}{u}", f"{unique}-g{g}p{p}", 1.0, datetime(2026, 11, 1, tzinfo=UTC), 1)
        for g in range(2)
        for u in range(12)
        for p in range(6)
        if p != u % 6
    ]
    schema = "user_id string, product_id string, strength double, last_ts timestamp, events long"
    spark.createDataFrame(rows, schema).write.format("delta").save(str(settings.lake_dir / "interactions"))
    bought = [(f"{unique}-u00", f"{unique}-g0p1")]
    spark.createDataFrame(bought, "user_id string, product_id string").write.format("delta").save(
        str(settings.lake_dir / "orders")
    )


def test_an_ease_version_is_chosen_recorded_promoted_and_served(settings, spark, mongo_db, unique):
    _two_tastes(settings, spark, unique)
    result = materialize(
        [*build_assets(settings), *all_checks],
        selection=["als_model", "current_model", "item_similarities", "user_recommendations"],
        instance=DagsterInstance.ephemeral(),
        resources=build_resources(settings),
        run_config=model_config(families=["ease"], search_ease_l2s=[0.5, 2.0], k=3),
        raise_on_error=False,
    )

    [check] = result.get_asset_check_evaluations()
    assert check.passed, check.metadata
    [model] = list(mongo_db.models.find())
    assert model["family"] == "ease" and model["promoted"] is True and model["checks_passed"] is True
    assert model["metrics"]["family"] == "ease" and "als" not in model["metrics"]
    assert model["metrics"]["ease"]["ndcg"] > model["metrics"]["popularity"]["ndcg"]
    assert result.success
    # A shopper's list: their group's products they do not have yet, never one they bought.
    document = mongo_db.recommendations.find_one({"_id": f"{unique}-u00"})
    assert document["strategy"] == "ease" and document["model_version"] == model["_id"]
    listed = [i["product_id"] for i in document["items"]]
    assert set(listed[:5]) == {f"{unique}-g0p{p}" for p in (0, 2, 3, 4, 5)} and f"{unique}-g0p1" not in listed
    # A product's neighbours come from its row of B: its own group only.
    similar = mongo_db.similar_items.find_one({"_id": f"{unique}-g1p2"})
    assert similar["source"] == "ease" and similar["model_version"] == model["_id"]
    assert similar["neighbours"] and all(n["product_id"].startswith(f"{unique}-g1") for n in similar["neighbours"])


def test_the_search_keeps_the_family_with_the_best_ndcg(settings, spark, mongo_db, unique):
    _two_tastes(settings, spark, unique)
    result = materialize(
        [*build_assets(settings), *all_checks],
        selection=["als_model"],
        instance=DagsterInstance.ephemeral(),
        resources=build_resources(settings),
        run_config=model_config(search_ease_l2s=[2.0], search_ease_binary=[True], k=3),
        raise_on_error=False,
    )

    [model] = list(mongo_db.models.find())
    metrics = model["metrics"]
    assert {"als", "ease"} <= set(metrics)
    assert model["family"] == max(("als", "ease"), key=lambda f: metrics[f]["ndcg"])
    [materialization] = result.get_asset_materialization_events()
    assert materialization.materialization.metadata["family"].value == model["family"]


def test_rollback_returns_to_the_previous_version_that_passed(mongo_db):
    for i, version in enumerate(["v1", "v2", "v3"]):
        mongo_db.models.insert_one(
            {
                "_id": version,
                "version": version,
                "checks_passed": version != "v2",
                "promoted": False,
                "created_at": datetime(2026, 11, 1 + i, tzinfo=UTC),
            }
        )
    promote_model(mongo_db, "v1")
    promote_model(mongo_db, "v3")
    assert rollback_model(mongo_db)["_id"] == "v1"
    assert [m["_id"] for m in mongo_db.models.find({"promoted": True})] == ["v1"]
    with pytest.raises(PromotionRefused, match="no version older"):
        rollback_model(mongo_db)


def test_rollback_job_from_the_ui_makes_the_older_version_current(settings, mongo_db):
    from recsys_assets.model import rollback_model_job
    from recsys_assets.resources import build_resources

    for i, version in enumerate(["old", "new"]):
        mongo_db.models.insert_one(
            {
                "_id": version,
                "version": version,
                "checks_passed": True,
                "promoted": False,
                "created_at": datetime(2026, 11, 1 + i, tzinfo=UTC),
            }
        )
        promote_model(mongo_db, version)
    result = rollback_model_job.execute_in_process(resources={"mongo": build_resources(settings)["mongo"]})
    assert result.success
    assert [m["_id"] for m in mongo_db.models.find({"promoted": True})] == ["old"]
