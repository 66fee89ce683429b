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
import statistics
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from dagster import DagsterInstance, materialize

from recsys_assets.definitions import build_assets
from recsys_assets.ingest import RANGE_END_TAG, RANGE_START_TAG, days_between
from recsys_assets.resources import build_resources
from recsys_core.settings import Settings
from recsys_io.spark import kafka_source_options

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


def landed_records(resources, day: str) -> int:
    """How many records the lake's run of `day` reads: that day's partition of the landing table."""
    from pyspark.sql import SparkSession

    frame = SparkSession.getActiveSession().read.format("delta").load(resources["lake"].table("events_landing"))
    return frame.where(f"day = '{day}'").count()


def topic_scan(settings: Settings, day: str) -> tuple[float, int]:
    """The baseline: what rebuilding `day` cost before the lake was the record, reading the events
    topic from the day's start to its end and keeping that day's events. Its seconds and how many
    records it read (which grows with the day's age)."""
    from pyspark.sql import SparkSession
    from pyspark.sql import functions as F

    start = int(datetime.fromisoformat(day).replace(tzinfo=UTC).timestamp() * 1000)
    started = time.perf_counter()
    records = (
        SparkSession.getActiveSession()
        .read.format("kafka")
        .options(**kafka_source_options(settings.kafka_servers, settings.topics.events))
        .option("startingTimestamp", str(start))
        .load()
        .select(F.get_json_object(F.col("value").cast("string"), "$.ts").alias("ts"))
        .agg(F.count("*"), F.count_if(F.col("ts").startswith(day)))
        .first()
    )
    assert records is not None  # an aggregate always has its one row
    return time.perf_counter() - started, int(records[0])


def rerun_by_age(settings: Settings, assets, resources, instance, ages: list[int], rounds: int) -> None:
    """Time runs of the day `age` days ago, for each age, `rounds` times in turn, beside the topic
    scan the platform did before: from the lake each run reads only its own landed day, so the
    oldest day should cost what the newest does (the ratio of their medians)."""
    today = date.today()
    print(f"warm-up: {today.isoformat()}", flush=True)
    timed_run(assets, resources, instance, partition_key=today.isoformat())
    days = {age: (today - timedelta(days=age)).isoformat() for age in ages}
    lake: dict[int, list[float]] = {age: [] for age in ages}
    scan: dict[int, list[float]] = {age: [] for age in ages}
    scanned: dict[int, int] = {}
    for round_ in range(1, rounds + 1):
        for age, day in days.items():
            lake[age].append(timed_run(assets, resources, instance, partition_key=day))
            seconds, scanned[age] = topic_scan(settings, day)
            scan[age].append(seconds)
            print(f"round {round_}, {age} days old ({day}): lake {lake[age][-1]:.1f} s, topic scan {seconds:.1f} s")
    figures: dict[str, object] = {"benchmark": "backfill_by_age", "machine": machine(), "rounds": rounds}
    by_age = {}
    for age, day in days.items():
        by_age[str(age)] = row = {
            "day": day,
            "raw_events_rows": table_rows(resources, day, day),
            "lake_records_read": landed_records(resources, day),
            "lake_seconds": [round(t, 1) for t in lake[age]],
            "lake_median": round(statistics.median(lake[age]), 1),
            "topic_records_read": scanned[age],
            "topic_scan_median": round(statistics.median(scan[age]), 1),
        }
        print(
            f"{age} days old ({day}): lake median {row['lake_median']} s reading {row['lake_records_read']} records; "
            f"topic scan median {row['topic_scan_median']} s reading {row['topic_records_read']} records",
            flush=True,
        )
    figures["days"] = by_age
    oldest, newest = max(ages), min(ages)
    for name, series in (("lake_oldest_over_newest", lake), ("topic_scan_oldest_over_newest", scan)):
        figures[name] = round(statistics.median(series[oldest]) / statistics.median(series[newest]), 2)
    print(
        f"{oldest} days old against {newest} days old: {figures['lake_oldest_over_newest']}x from the lake, "
        f"{figures['topic_scan_oldest_over_newest']}x scanning the topic; on {figures['machine']}"
    )
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "backfill_by_age.json").write_text(json.dumps(figures, indent=2))


def main() -> None:
    yesterday = date.today() - timedelta(days=1)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--from", dest="first", default=(yesterday - timedelta(days=9)).isoformat())
    parser.add_argument("--to", dest="last", default=yesterday.isoformat())
    parser.add_argument("--ages", help="Comma-separated ages in days (e.g. 1,30,60): re-run those single days.")
    parser.add_argument(
        "--rounds", type=int, default=3, help="With --ages: how many times each day is re-run, in turn."
    )
    args = parser.parse_args()
    days = days_between(args.first, args.last)
    settings = Settings.from_env()
    assets, resources, instance = build_assets(settings), build_resources(settings), DagsterInstance.ephemeral()
    if args.ages:
        rerun_by_age(settings, assets, resources, instance, [int(a) for a in args.ages.split(",")], args.rounds)
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
