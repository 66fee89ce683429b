"""The one Definitions object of the recsys code location."""

from dagster import Definitions

from recsys_assets import automation, bestsellers, catalog, ingest, model, serving
from recsys_assets.resources import build_resources
from recsys_core.settings import Settings

all_assets = [ingest.raw_events, catalog.products, catalog.orders, bestsellers.bestseller_tables,
              model.interactions, model.als_model, model.current_model, serving.bestseller_documents,
              serving.item_similarities, serving.content_similarities, serving.user_recommendations]
all_checks = [model.als_beats_popularity]

defs = Definitions(
    assets=all_assets,
    asset_checks=all_checks,
    jobs=[automation.hourly_refresh, automation.model_refresh, model.rollback_model_job],
    schedules=[automation.hourly_ingest_schedule, automation.daily_model_schedule],
    sensors=[automation.retrain_sensor, automation.run_failure_logger],
    resources=build_resources(Settings.from_env()),
)
