"""The time a run's rules count up to: bestsellers rank the window ending at it, interactions decay against it.

It is decided once per run, on the driver, never by a clock inside Spark: the run config's
`as_of` when given (what the schedules, the retrain sensor and `recsys materialize` set, so a
re-execution of a run computes what the run did), else the end of the run's partition day (or
of the last day of its range: a backfilled day sees what it would have seen then), else the time
the run started, so every step of a run counts to the same time.
"""

from collections.abc import Iterable
from datetime import UTC, datetime

from dagster import AssetExecutionContext, Config

from recsys_assets.ingest import PARTITION_TAG, RANGE_END_TAG, day_bounds
from recsys_core.events import parse_ts

# The ops whose rules take an as_of: they read it from their config.
BESTSELLERS_OP = "bestseller_tables"
INTERACTIONS_OP = "interactions"


class AsOfConfig(Config):
    as_of: str = ""
    """ISO-8601 time the rules count up to (default: the end of the run's partition day, else the run's start)."""


def day_end(day: str, now: datetime | None = None) -> datetime:
    """The end of a UTC day, or now while the day is not over."""
    return min(day_bounds(day)[1], now or datetime.now(UTC))


def run_as_of(context: AssetExecutionContext, config: AsOfConfig) -> datetime:
    if config.as_of:
        return parse_ts(config.as_of, "as_of")
    tags = context.run.tags
    partition = tags.get(PARTITION_TAG) or tags.get(RANGE_END_TAG)
    return day_end(partition) if partition else run_started_at(context)


def run_started_at(context: AssetExecutionContext) -> datetime:
    stats = context.instance.get_run_stats(context.run_id)
    return datetime.fromtimestamp(stats.start_time, UTC) if stats and stats.start_time else datetime.now(UTC)


def as_of_run_config(ops: Iterable[str], as_of: datetime) -> dict:
    """Run config giving each of `ops` (of the job being launched) the same `as_of`."""
    return {"ops": {op: {"config": {"as_of": as_of.isoformat()}} for op in ops}}
