"""`events_landing` as Dagster sees it: written by the sink (`recsys sink`), observed here, watched by a check,
and the sensor that rebuilds the days late events landed in.

The sink is a long-running Structured Streaming query, not a Dagster run: the asset is an
observable source whose data version is the table's Delta version, so raw_events shows as stale
when records landed since it was built. Everything here reads files and Kafka metadata, no Spark.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetSelection,
    DataVersion,
    DefaultScheduleStatus,
    DefaultSensorStatus,
    ObserveResult,
    RunRequest,
    ScheduleDefinition,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    asset_check,
    define_asset_job,
    observable_source_asset,
    sensor,
)

from recsys_assets.resources import KafkaResource, LakeResource
from recsys_core.landing import lag_minutes, records_behind
from recsys_core.settings import LANDING_TABLE
from recsys_io.kafka import end_offsets, record_times
from recsys_io.lake_log import committed_offsets, days_added, delta_version


def sink_checkpoint(lake: LakeResource) -> Path:
    """Where `recsys sink` keeps its offsets (streaming.sink.checkpoint_dir, under the same data dir)."""
    return Path(lake.data_dir) / "checkpoints" / "sink"


@observable_source_asset(
    name=LANDING_TABLE,
    group_name="ingest",
    description="Every record of recsys.events as it came (value, topic, partition, offset, Kafka timestamp), "
    "by the day of the event's own time; appended exactly once by `recsys sink`. Delta, partitioned by day.",
)
def events_landing(kafka: KafkaResource, lake: LakeResource) -> ObserveResult:
    version = delta_version(Path(lake.table(LANDING_TABLE)))
    landed = committed_offsets(sink_checkpoint(lake), kafka.events_topic)
    return ObserveResult(
        data_version=DataVersion(str(version)),
        metadata={"delta_version": -1 if version is None else version, "landed_offsets": json.dumps(landed)},
    )


@asset_check(
    asset=LANDING_TABLE,
    description="Warns when the oldest record of the events topic not yet landed has waited longer than "
    "RECSYS_SINK_MAX_LAG_MINUTES (is `recsys sink` running?).",
)
def sink_keeps_up(kafka: KafkaResource, lake: LakeResource) -> AssetCheckResult:
    settings = kafka.settings()
    topic = settings.topics.events
    landed = committed_offsets(sink_checkpoint(lake), topic)
    behind = records_behind(landed, end_offsets(settings, topic))
    waiting = record_times(settings, topic, {p: landed.get(p, 0) for p in behind})
    lag = lag_minutes(waiting, datetime.now(UTC))
    return AssetCheckResult(
        passed=lag <= kafka.sink_max_lag_minutes,
        severity=AssetCheckSeverity.WARN,
        metadata={
            "lag_minutes": round(lag, 2),
            "records_behind": sum(behind.values()),
            "max_lag_minutes": kafka.sink_max_lag_minutes,
        },
    )


sink_watch = define_asset_job(
    "sink_watch",
    selection=AssetSelection.assets(LANDING_TABLE) | AssetSelection.checks(sink_keeps_up),
    description="Observes events_landing and checks that the sink keeps up with the topic.",
)
sink_watch_schedule = ScheduleDefinition(
    job=sink_watch,
    cron_schedule="*/5 * * * *",
    execution_timezone="UTC",
    default_status=DefaultScheduleStatus.RUNNING,
    description="Every 5 minutes: observe events_landing and run sink_keeps_up.",
)
late_events = define_asset_job(
    "late_events",
    selection=AssetSelection.assets("raw_events", "quarantined_events"),
    description="raw_events of the days new records landed in.",
)


def landed_days_decision(table: Path, cursor: str | None, partition_keys: set[str]):
    """(what to do, new cursor): one raw_events run per day that gained landed records after the cursor's version.

    The first evaluation only remembers where the table stands: the initial materialisation
    built the days landed before it.
    """
    if cursor is None:
        latest = delta_version(table)
        return SkipReason(f"starting from events_landing version {latest}"), None if latest is None else str(latest)
    latest, days = days_added(table, int(cursor))
    if latest is None or str(latest) == cursor:
        return SkipReason("nothing landed since the last look"), cursor
    wanted = sorted(days & partition_keys)
    if not wanted:
        return SkipReason(f"versions {cursor}..{latest} added no day raw_events has"), str(latest)
    return [RunRequest(run_key=f"landed-{latest}-{day}", partition_key=day) for day in wanted], str(latest)


@sensor(
    job=late_events,
    minimum_interval_seconds=120,
    default_status=DefaultSensorStatus.RUNNING,
    description="Rebuilds raw_events for every day that received newly landed records (late events "
    "included) since its last look.",
)
def late_events_sensor(context: SensorEvaluationContext, lake: LakeResource):
    job = context.repository_def.get_job("late_events")
    keys = set(job.partitions_def.get_partition_keys()) if job.partitions_def else set()
    decision, cursor = landed_days_decision(Path(lake.table(LANDING_TABLE)), context.cursor, keys)
    if isinstance(decision, SkipReason):
        return SensorResult(skip_reason=decision, cursor=cursor)
    return SensorResult(run_requests=decision, cursor=cursor)
