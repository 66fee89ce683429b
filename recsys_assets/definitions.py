"""The one Definitions object of the recsys code location."""

from dagster import Definitions

from recsys_assets import bestsellers, catalog, ingest
from recsys_assets.resources import build_resources
from recsys_core.settings import Settings

all_assets = [ingest.raw_events, catalog.products, catalog.orders, bestsellers.bestseller_tables]

defs = Definitions(assets=all_assets, resources=build_resources(Settings.from_env()))
