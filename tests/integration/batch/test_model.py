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
