"""The code location loads, the retrain sensor fires only after enough new events, and batch
recommendations never overwrite fresher streaming documents."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from dagster import AssetMaterialization, DagsterInstance, RunRequest, SkipReason, build_sensor_context

from recsys_assets.automation import retrain_sensor
from recsys_assets.publish import write_recommendations
from recsys_assets.resources import LakeResource
from tests.support import ROOT  # noqa: E402


def test_definitions_load_with_dagster_validate(tmp_path):
    env = {**os.environ, "RECSYS_DATA_DIR": str(tmp_path), "DAGSTER_HOME": str(tmp_path)}
    done = subprocess.run(
        [str(Path(sys.executable).parent / "dagster"), "definitions", "validate", "-m", "recsys_assets.definitions"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]


def _evaluate(instance, cursor, threshold=100):
    context = build_sensor_context(
        instance=instance,
        cursor=cursor,
        resources={"lake": LakeResource(data_dir="/unused", retrain_min_new_events=threshold)},
    )
    return retrain_sensor(context), context.cursor


def test_sensor_requests_a_retrain_after_enough_new_events_and_not_before():
    instance = DagsterInstance.ephemeral()
    decision, cursor = _evaluate(instance, None)
    assert isinstance(decision, SkipReason)
    instance.report_runless_asset_event(AssetMaterialization("als_model", metadata={"shopper_events_total": 200}))
    instance.report_runless_asset_event(
        AssetMaterialization("raw_events", partition="2026-11-21", metadata={"shopper_events_total": 299})
    )
    decision, cursor = _evaluate(instance, cursor)
    assert isinstance(decision, SkipReason) and "99 new events" in decision.skip_message
    instance.report_runless_asset_event(
        AssetMaterialization("raw_events", partition="2026-11-22", metadata={"shopper_events_total": 300})
    )
    decision, cursor = _evaluate(instance, cursor)
    assert isinstance(decision, RunRequest) and cursor is not None
    # The cursor is stored by Dagster: evaluating again (e.g. after a restart) does not ask twice.
    decision, again = _evaluate(instance, cursor)
    assert isinstance(decision, SkipReason) and again == cursor


@pytest.mark.integration
def test_batch_recommendations_never_overwrite_a_fresher_streaming_document(mongo_db):
    started = datetime.now(UTC)
    mongo_db.recommendations.insert_many(
        [
            {
                "_id": "fresh",
                "items": [{"product_id": "live", "score": 1.0}],
                "strategy": "realtime",
                "computed_at": started + timedelta(seconds=5),
            },
            {"_id": "stale", "items": [], "strategy": "realtime", "computed_at": started - timedelta(hours=1)},
        ]
    )
    batch = [
        {
            "_id": u,
            "user_id": u,
            "items": [{"product_id": "batch", "score": 0.5}],
            "strategy": "als",
            "model_version": "v1",
            "computed_at": datetime.now(UTC),
            "last_event_ts": None,
        }
        for u in ("fresh", "stale", "new")
    ]
    assert write_recommendations(mongo_db, batch, started) == (2, 1)
    strategies = {d["_id"]: d["strategy"] for d in mongo_db.recommendations.find()}
    assert strategies == {"fresh": "realtime", "stale": "als", "new": "als"}


def test_run_failure_sensor_names_the_asset_and_the_reason(tmp_path):
    from dagster import build_run_status_sensor_context, materialize

    from recsys_assets.automation import failure_summary, run_failure_logger
    from recsys_assets.model import current_model
    from recsys_assets.resources import MongoResource

    instance = DagsterInstance.ephemeral()
    # current_model before any als_model run fails before touching any server.
    result = materialize(
        [current_model],
        instance=instance,
        raise_on_error=False,
        resources={"mongo": MongoResource(url="mongodb://127.0.0.1:1/", database="unused")},
    )
    context = build_run_status_sensor_context(
        sensor_name="run_failure_logger",
        dagster_instance=instance,
        dagster_run=result.dagster_run,
        dagster_event=result.get_run_failure_event(),
    ).for_run_failure()
    summary = failure_summary(context)
    assert "current_model" in summary and "als_model has never been materialised" in summary
    run_failure_logger(context)


def test_hourly_schedule_materialises_todays_partition():
    from dagster import build_schedule_context

    from recsys_assets.automation import hourly_ingest_schedule

    tick = datetime(2026, 11, 22, 5, 5, tzinfo=UTC)
    request = hourly_ingest_schedule(build_schedule_context(scheduled_execution_time=tick))
    assert request.partition_key == "2026-11-22"


@pytest.mark.integration
def test_batch_recommendations_leave_out_what_the_history_says_was_bought(mongo_db):
    """A purchase the speed layer saw after the orders table was built still stays out."""
    mongo_db.history.insert_one({"_id": "u1", "user_id": "u1", "product_ids": [], "viewed_at": [], "purchased": ["p2"]})
    items = [{"product_id": f"p{i}", "score": 1 - i / 10} for i in range(4)]
    batch = [
        {
            "_id": "u1",
            "user_id": "u1",
            "items": items,
            "strategy": "als",
            "model_version": "v1",
            "computed_at": datetime.now(UTC),
            "last_event_ts": None,
        }
    ]
    assert write_recommendations(mongo_db, batch, datetime.now(UTC)) == (1, 0)
    stored = mongo_db.recommendations.find_one({"_id": "u1"})
    assert [i["product_id"] for i in stored["items"]] == ["p0", "p1", "p3"]
