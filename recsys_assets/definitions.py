"""The one Definitions object of the recsys code location."""

from dagster import Definitions

defs = Definitions(assets=[])
