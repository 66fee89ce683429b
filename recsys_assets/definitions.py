"""The recsys code location: its one Definitions object, built when Dagster loads the location.

Importing this module reads no setting. `defs` (what `workspace.yaml` and `dagster -m` load) reads
and validates the RECSYS_* variables when it is called, so a bad value stops the code location
from loading with the variable's name; the daily partitions start on RECSYS_EVENTS_START_DATE as
it is then. The resources read the variables again when a run starts (see resources.py).
"""

from dagster import AssetsDefinition, Definitions, SourceAsset, definitions

from recsys_assets import (
    automation,
    bestsellers,
    blend_weight,
    buy_again,
    catalog,
    erasures,
    experiment_results,
    ingest,
    landing,
    model,
    online_metrics,
    serving,
)
from recsys_assets.resources import build_resources
from recsys_core.settings import Settings

all_checks = [model.als_beats_popularity, landing.sink_keeps_up]


def build_assets(settings: Settings) -> list[AssetsDefinition | SourceAsset]:
    """Every asset of the graph, raw_events and the online metrics partitioned by day from the settings' start date."""
    partitions = ingest.daily_partitions(settings.events_start_date)
    return [
        landing.events_landing,
        erasures.erasures,
        ingest.raw_events_asset(partitions),
        catalog.products,
        catalog.orders,
        bestsellers.bestseller_tables,
        model.interactions,
        model.als_model,
        model.current_model,
        serving.bestseller_documents,
        serving.item_similarities,
        serving.content_similarities,
        serving.user_recommendations,
        buy_again.buy_again_lists,
        blend_weight.buy_again_weight,
        *online_metrics.metrics_assets(partitions, settings.attribution_window),
        experiment_results.experiment_results_asset,
    ]


def build_definitions(settings: Settings) -> Definitions:
    return Definitions(
        assets=build_assets(settings),
        asset_checks=all_checks,
        jobs=[
            automation.hourly_refresh,
            automation.model_refresh,
            model.rollback_model_job,
            experiment_results.promote_experiment_winner_job,
            landing.sink_watch,
            landing.late_events,
        ],
        schedules=[automation.hourly_ingest_schedule, automation.daily_model_schedule, landing.sink_watch_schedule],
        sensors=[automation.retrain_sensor, automation.run_failure_logger, landing.late_events_sensor],
        resources=build_resources(),
    )


@definitions
def defs() -> Definitions:
    return build_definitions(Settings.from_env())
