"""Benchmark: backfilling raw_events for a range of days, one run per day against one run for the range;
with --ages, re-running single days of those ages (e.g. 1, 30 and 60 days old) from the lake.

Runs against the stack in the environment (RECSYS_*), on events already in `recsys.events`, e.g.:

    recsys simulate history --days 10 --users 200 --products 100 --until 2026-11-21T00:00:00Z
    .venv/bin/python bench/backfill.py --from 2026-11-11 --to 2026-11-20

    .venv/bin/python bench/backfill.py --ages 1,30,60   # on `make run`'s simulated store, landed

Both ways run in this process with one Spark session, after an untimed warm-up run, so JVM start-up
is left out of both. They write the same table (checked); the figure is the ratio of their times.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from datetime import date, timedelta
from pathlib import Path

from dagster import DagsterInstance, materialize

from recsys_assets.definitions import build_assets
from recsys_assets.ingest import RANGE_END_TAG, RANGE_START_TAG, days_between
from recsys_assets.resources import build_resources
from recsys_core.settings import Settings

RESULTS = Path(__file__).resolve().parent / "results"
SELECTION = ["raw_events", "quarantined_events"]
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}  # Dagster's events would bury the figures


def machine() -> dict[str, object]:
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return {
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "memory_gib": round(memory, 1),
        "python": platform.python_version(),
    }


def timed_run(assets, resources, instance, **kwargs) -> float:
    started = time.perf_counter()
    materialize(assets, selection=SELECTION, resources=resources, instance=instance, run_config=QUIET, **kwargs)
    return time.perf_counter() - started


def table_rows(resources, first: str, last: str) -> int:
    from pyspark.sql import SparkSession

    path = resources["lake"].table("raw_events")
    frame = SparkSession.getActiveSession().read.format("delta").load(path)
    return frame.where(f"day >= '{first}' AND day <= '{last}'").count()


def rerun_by_age(assets, resources, instance, ages: list[int]) -> None:
    """Time one run of the day `age` days ago, for each age: each reads only its own landed day."""
    today = date.today()
    print(f"warm-up: {today.isoformat()}", flush=True)
    timed_run(assets, resources, instance, partition_key=today.isoformat())
    figures = {"benchmark": "backfill_by_age", "machine": machine(), "days": {}}
    for age in ages:
        day = (today - timedelta(days=age)).isoformat()
        seconds = timed_run(assets, resources, instance, partition_key=day)
        rows = table_rows(resources, day, day)
        print(f"{age} days old ({day}): {seconds:.1f} s ({rows} rows)", flush=True)
        figures["days"][str(age)] = {"day": day, "seconds": round(seconds, 1), "rows": rows}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "backfill_by_age.json").write_text(json.dumps(figures, indent=2))


def main() -> None:
    yesterday = date.today() - timedelta(days=1)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--from", dest="first", default=(yesterday - timedelta(days=9)).isoformat())
    parser.add_argument("--to", dest="last", default=yesterday.isoformat())
    parser.add_argument("--ages", help="Comma-separated ages in days (e.g. 1,30,60): re-run those single days.")
    args = parser.parse_args()
    days = days_between(args.first, args.last)
    settings = Settings.from_env()
    assets, resources, instance = build_assets(settings), build_resources(settings), DagsterInstance.ephemeral()
    if args.ages:
        rerun_by_age(assets, resources, instance, [int(a) for a in args.ages.split(",")])
        return

    print(f"warm-up: {days[0]}", flush=True)
    timed_run(assets, resources, instance, partition_key=days[0])
    per_day = sum(timed_run(assets, resources, instance, partition_key=day) for day in days)
    rows_per_day = table_rows(resources, days[0], days[-1])
    print(f"{len(days)} runs of one day: {per_day:.1f} s ({rows_per_day} rows)", flush=True)
    ranged = timed_run(assets, resources, instance, tags={RANGE_START_TAG: days[0], RANGE_END_TAG: days[-1]})
    rows_ranged = table_rows(resources, days[0], days[-1])
    print(f"one run of {len(days)} days: {ranged:.1f} s ({rows_ranged} rows)")
    if rows_ranged != rows_per_day:
        raise SystemExit(f"the two ways wrote different tables: {rows_per_day} and {rows_ranged} rows")

    figures = {
        "benchmark": "backfill",
        "machine": machine(),
        "days": len(days),
        "first": days[0],
        "last": days[-1],
        "rows": rows_ranged,
        "per_day_seconds": round(per_day, 1),
        "range_seconds": round(ranged, 1),
        "speed_up": round(per_day / ranged, 2),
    }
    print(f"speed-up: {figures['speed_up']}x on {figures['machine']}")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "backfill.json").write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
