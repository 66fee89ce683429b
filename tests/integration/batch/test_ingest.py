"""raw_events from the lake's landed records (real Kafka -> the sink -> Delta): day partitions by the
event's own time, idempotent backfills, a range of days in one run, days rebuilt after Kafka deleted
their records, late events rebuilt by the sensor."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from dagster import materialize
from pyspark.sql import functions as F

from recsys_assets.definitions import build_assets, build_definitions
from recsys_assets.ingest import RANGE_END_TAG, RANGE_START_TAG
from recsys_assets.landing import landed_days_decision
from recsys_assets.resources import build_resources
from recsys_core.events import format_ts
from tests.support.batch import event, land, produce
from tests.support.isolation import truncate

pytestmark = pytest.mark.integration


def run(settings, selection, partition=None, run_config=None, raise_on_error=True, instance=None, days=None):
    """One in-process run; `days=(first, last)` makes it one run over that range, as a UI backfill does."""
    tags = {RANGE_START_TAG: days[0], RANGE_END_TAG: days[1]} if days else None
    return materialize(
        build_assets(settings),
        selection=selection,
        partition_key=partition,
        resources=build_resources(settings),
        run_config=run_config,
        raise_on_error=raise_on_error,
        instance=instance,
        tags=tags,
    )


def lake_rows(spark, settings, table, where="true"):
    frame = spark.read.format("delta").load(str(settings.lake_dir / table)).where(where)
    return sorted(tuple(r) for r in frame.drop("kafka_partition", "kafka_offset").collect())


def test_backfilling_three_days_twice_as_a_range_gives_the_tables_of_per_day_runs(settings, spark, unique):
    days = [datetime(2026, 10, 1, tzinfo=UTC) + timedelta(days=i) for i in range(3)]
    keys = [day.date().isoformat() for day in days]
    user = f"{unique}-u"
    events = [event("product_view", user, f"{unique}-p{i}", day + timedelta(hours=6)) for i, day in enumerate(days)]
    repeated = events[0]
    tombstone = event("history_delete", user, f"{unique}-p1", days[1] + timedelta(hours=7))
    broken = {
        "type": "rating",
        "user_id": user,
        "product_id": f"{unique}-p0",
        "score": 9,
        "ts": format_ts(days[0] + timedelta(hours=1)),
    }
    produce(settings, [*events, repeated, tombstone, broken, f"not json {unique}".encode()])
    land(settings, spark)
    mine = f"user_id = '{user}'"

    def quarantined():
        frame = spark.read.format("delta").load(str(settings.lake_dir / "quarantined_events"))
        return sorted((r.day, r.reason) for r in frame.where(f"value like '%{unique}%'").collect())

    for key in keys:
        run(settings, ["raw_events", "quarantined_events"], partition=key)
    per_day = lake_rows(spark, settings, "raw_events", mine), quarantined()
    ranged = []
    for _ in range(2):
        result = run(settings, ["raw_events", "quarantined_events"], days=(keys[0], keys[-1]))
        ranged.append((lake_rows(spark, settings, "raw_events", mine), quarantined()))
    assert ranged[0] == ranged[1] == per_day
    rows = per_day[0]
    assert len(rows) == 4  # three views (one sent twice) and the tombstone
    assert sum(1 for r in rows if r[1] == "history_delete") == 1
    today = datetime.now(UTC).date()
    assert sorted(per_day[1]) == [(days[0].date(), "score: must be from 0.5 to 5 in steps of 0.5")]
    # Not JSON: it landed on its arrival day and is quarantined there with the reason.
    run(settings, ["raw_events", "quarantined_events"], partition=today.isoformat())
    assert [(day, reason[:15]) for day, reason in quarantined() if day == today] == [(today, "value: not JSON")]
    recorded = [
        e.partition for e in result.get_asset_materialization_events() if e.asset_key.to_user_string() == "raw_events"
    ]
    assert sorted(recorded) == keys  # one run, but every day of the range is marked materialised


def test_days_are_rebuilt_the_same_after_kafka_deleted_their_records(settings, spark, unique):
    days = [datetime(2026, 3, 10, tzinfo=UTC) + timedelta(days=i) for i in range(3)]
    keys = [day.date().isoformat() for day in days]
    user = f"{unique}-u"
    produce(
        settings,
        [
            event("product_view", user, f"{unique}-p", days[0] + timedelta(hours=3)),
            event("rating", user, f"{unique}-p", days[2] + timedelta(hours=3), score=9),
            event("product_view", user, f"{unique}-p", days[2] + timedelta(hours=3)),
        ],
    )
    land(settings, spark)
    path = str(settings.lake_dir / "raw_events")
    run(settings, ["raw_events", "quarantined_events"], days=(keys[0], keys[-1]))
    mine = f"user_id = '{user}'"
    before = lake_rows(spark, settings, "raw_events", mine)
    # A row the middle day held before (say, written by hand) goes: a run replaces its days whole.
    stale = spark.read.format("delta").load(path).where(f"{mine} and day = '{keys[0]}'")
    stale.withColumn("day", F.lit(keys[1]).cast("date")).write.format("delta").mode("append").save(path)

    # Retention (or an operator) deletes every record the topic holds: the lake still has them.
    truncate(settings, settings.topics.events)
    land(settings, spark)  # nothing new to land, nothing lost
    result = run(settings, ["raw_events", "quarantined_events"], days=(keys[0], keys[-1]))
    assert lake_rows(spark, settings, "raw_events", mine) == before
    assert sorted((str(r[-1]), r[1]) for r in before) == [(keys[0], "product_view"), (keys[2], "product_view")]
    quarantined = spark.read.format("delta").load(str(settings.lake_dir / "quarantined_events"))
    assert [str(r.day) for r in quarantined.where(f"value like '%{unique}%'").collect()] == [keys[2]]
    metadata = next(
        e for e in result.get_asset_materialization_events() if e.asset_key.to_user_string() == "raw_events"
    ).materialization.metadata
    assert metadata["by_day"].value.splitlines()[2:] == [
        f"| {keys[0]} | 1 | 0 |",
        f"| {keys[1]} | 0 | 0 |",
        f"| {keys[2]} | 1 | 1 |",
    ]
    assert metadata["by_type"].value.splitlines()[2:] == ["| product_view | 2 |"]
    [check] = result.get_asset_check_evaluations()
    assert not check.passed and check.metadata["quarantined"].value == 1
    assert len(check.metadata["reasons"].value.splitlines()[2:]) == 1


def test_a_late_event_lands_in_its_own_day_and_the_sensor_requests_that_day(settings, spark, unique):
    table = settings.landing_dir
    produce(settings, [event("product_view", f"{unique}-u0", f"{unique}-p", datetime.now(UTC))])
    land(settings, spark)
    keys = {(datetime(2026, 1, 1) + timedelta(days=i)).date().isoformat() for i in range(400)}
    skip, cursor = landed_days_decision(table, None, keys)
    assert cursor is not None and "starting from" in skip.skip_message
    late = datetime.now(UTC) - timedelta(days=4)
    produce(settings, [event("product_view", f"{unique}-u1", f"{unique}-p", late)])
    land(settings, spark)
    landed = spark.read.format("delta").load(str(table)).where(f"value like '%{unique}-u1%'")
    assert [r.day for r in landed.collect()] == [late.date()]
    requests, after = landed_days_decision(table, cursor, keys)
    assert [r.partition_key for r in requests] == [late.date().isoformat()]
    again, _ = landed_days_decision(table, after, keys)
    assert "nothing landed" in again.skip_message
    job = build_definitions(settings).get_job_def("late_events")
    assert late.date().isoformat() in job.partitions_def.get_partition_keys()


def test_events_the_lake_cannot_place_are_quarantined_on_their_arrival_day_with_the_reason(settings, spark, unique):
    today = datetime.now(UTC).date().isoformat()
    user = f"{unique}-u"
    old = event("product_view", user, f"{unique}-old", datetime(2025, 12, 31, 23, tzinfo=UTC))
    future = {**event("product_view", user, f"{unique}-future", datetime.now(UTC)), "ts": "9999-12-31T23:59:59Z"}
    overflow = {
        **event("product_view", user, f"{unique}-overflow", datetime.now(UTC)),
        "ts": "0001-01-01T00:00:00+01:00",
    }
    produce(settings, [old, future, overflow])
    land(settings, spark)
    run(settings, ["raw_events", "quarantined_events"], partition=today)
    frame = spark.read.format("delta").load(str(settings.lake_dir / "quarantined_events"))
    rows = sorted((str(r.day), r.reason) for r in frame.where(f"value like '%{unique}%'").collect())
    assert [day for day, _ in rows] == [today] * 3
    reasons = sorted(reason for _, reason in rows)
    assert reasons[0].startswith("ts: '0001-01-01T00:00:00+01:00' is outside the range of dates")
    assert reasons[1].startswith("ts: before RECSYS_EVENTS_START_DATE (2026-01-01)")
    assert reasons[2] == "ts: is more than 5 minutes in the future"
    assert lake_rows(spark, settings, "raw_events", f"user_id = '{user}'") == []
