"""The batch layer running by itself: hourly ingest and bestsellers, a daily model, a retrain sensor.

The retrain sensor compares the shopper events in raw_events (recorded by every raw_events run) with
those the current model was trained on (recorded by als_model); its cursor remembers which
raw_events run it already acted on, so a restart of the daemon does not request the same retrain
twice. Every run they request carries its as_of (the tick, or the sensor's evaluation) in its run
config, so re-executing one computes what it did.
"""

from datetime import UTC, datetime

from dagster import (
    AssetKey,
    AssetSelection,
    DefaultSensorStatus,
    RunFailureSensorContext,
    RunRequest,
    ScheduleEvaluationContext,
    SensorEvaluationContext,
    SkipReason,
    define_asset_job,
    run_failure_sensor,
    schedule,
    sensor,
)

from recsys_assets.as_of import BESTSELLERS_OP, INTERACTIONS_OP, as_of_run_config
from recsys_assets.resources import LakeResource

INGEST = AssetSelection.assets("erasures", "raw_events", "quarantined_events", "products", "orders")
BUY_AGAIN = AssetSelection.assets("buy_again_lists")
BESTSELLERS = AssetSelection.assets("bestsellers", "category_bestsellers", "bestseller_documents")
ONLINE_METRICS = AssetSelection.assets(
    "impressions", "clicks", "attributed_orders", "online_metrics", "experiment_results"
)
MODEL = AssetSelection.assets(
    "interactions",
    "als_model",
    "current_model",
    "item_similarities",
    "content_similarities",
    "user_recommendations",
    # A model fit too, so it is chosen again with the model rather than every hour.
    "buy_again_weight",
)

# Partitioned like raw_events: Dagster takes the partitions from the selected assets when it resolves the job.
hourly_refresh = define_asset_job(
    "hourly_refresh",
    selection=INGEST | BESTSELLERS | BUY_AGAIN | ONLINE_METRICS,
    description="Today's raw_events, the catalog, orders, the bestsellers, the buy-again lists, the online metrics "
    "and experiment results.",
)
model_refresh = define_asset_job(
    "model_refresh",
    selection=MODEL,
    description="Interactions, a new ALS version (checked, promoted if it passes), similar items, recommendations "
    "and the buy_again blend weight.",
)


@schedule(
    job=hourly_refresh,
    cron_schedule="5 * * * *",
    execution_timezone="UTC",
    description="Every hour: today's raw_events partition, the bestsellers and the online metrics.",
)
def hourly_ingest_schedule(context: ScheduleEvaluationContext) -> RunRequest:
    tick = context.scheduled_execution_time.astimezone(UTC)
    return RunRequest(
        run_key=None, partition_key=tick.date().isoformat(), run_config=as_of_run_config([BESTSELLERS_OP], tick)
    )


@schedule(
    job=model_refresh,
    cron_schedule="30 3 * * *",
    execution_timezone="UTC",
    description="Every day at 03:30 UTC: retrain, check and promote; choose the buy_again blend weight again.",
)
def daily_model_schedule(context: ScheduleEvaluationContext) -> RunRequest:
    return RunRequest(
        run_key=None, run_config=as_of_run_config([INTERACTIONS_OP], context.scheduled_execution_time.astimezone(UTC))
    )


def _latest_metadata(instance, key: str):
    records = instance.fetch_materializations(AssetKey(key), limit=1).records
    if not records or records[0].asset_materialization is None:
        return None, {}
    record = records[0]
    return record.storage_id, {k: v.value for k, v in record.asset_materialization.metadata.items()}


def retrain_decision(
    instance, cursor: str | None, threshold: int, now: datetime | None = None
) -> tuple[RunRequest | SkipReason, str | None]:
    """(what to do, new cursor): request a retrain, as of `now`, once raw_events grew by `threshold` rows."""
    storage_id, ingest = _latest_metadata(instance, "raw_events")
    if storage_id is None:
        return SkipReason("raw_events has not been materialised yet"), cursor
    if cursor is not None and int(cursor) >= storage_id:
        return SkipReason("no raw_events run since the last retrain request"), cursor
    _, model = _latest_metadata(instance, "als_model")
    # Only events a model learns from count: served lists' impressions and clicks do not.
    new_events = int(ingest.get("shopper_events_total", 0)) - int(model.get("shopper_events_total", 0))
    if new_events < threshold:
        return SkipReason(f"{new_events} new events since the current model; retrain at {threshold}"), cursor
    return RunRequest(
        run_key=f"retrain-{storage_id}",
        tags={"recsys/new_events": str(new_events)},
        run_config=as_of_run_config([INTERACTIONS_OP], now or datetime.now(UTC)),
    ), str(storage_id)


@sensor(
    job=model_refresh,
    minimum_interval_seconds=300,
    default_status=DefaultSensorStatus.RUNNING,
    description="Requests a retrain when raw_events gained RECSYS_RETRAIN_MIN_NEW_EVENTS events since "
    "the current model was trained.",
)
def retrain_sensor(context: SensorEvaluationContext, lake: LakeResource):
    decision, cursor = retrain_decision(context.instance, context.cursor, lake.retrain_min_new_events)
    if cursor != context.cursor:
        context.update_cursor(cursor)
    return decision


def failure_summary(context: RunFailureSensorContext) -> str:
    """One line: the run, its job, the assets it targeted and each failing step's message."""
    run = context.dagster_run
    assets = ", ".join(k.to_user_string() for k in (run.asset_selection or ())) or "all assets"
    reasons = [
        f"{e.step_key}: {e.event_specific_data.error.message.strip()}"
        for e in context.get_step_failure_events()
        if e.event_specific_data.error
    ]
    return f"run {run.run_id} ({run.job_name}) failed [{assets}]: {'; '.join(reasons) or context.failure_event.message}"


@run_failure_sensor(
    default_status=DefaultSensorStatus.RUNNING,
    description="Logs every failed run with the assets it targeted and the reason.",
)
def run_failure_logger(context: RunFailureSensorContext) -> None:
    context.log.error(failure_summary(context))
