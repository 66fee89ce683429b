"""Benchmark: how many shoppers a second the speed layer's batch function writes, without Kafka or the API.

`bench/freshness.py` measures the whole path, with the API, Kafka and the benchmark itself on
the same two cores; this one measures the part that bounds it, the job's `foreachBatch`
function (`streaming.batch.BatchProcessor`, whose tasks do the work on the session's executors),
so a change to the job or the store shows up without the noise of the rest.

1. Seeds a database of its own (`bench_stream_capacity`, dropped at the end) with the catalog,
   neighbours and bestsellers of `bench/freshness.py`, for every shopper a full history
   (--history, 50 views), and a promoted model of the production rank that knows every second
   shopper, as in a store that has run a while.
2. Builds batches of --events product views over --users shoppers as Spark DataFrames shaped
   like the Kafka source's (one Spark partition per Kafka partition of RECSYS_EVENTS_PARTITIONS,
   each shopper in the partition its key would pick), and calls the batch function on each:
   --warmup rounds untimed (the Python workers fill their caches), then --rounds timed. Per
   shopper: wall time, FerretDB's CPU and the CPU of the tasks' Python workers (as they report
   it; the JVMs are not counted).
3. Baseline, in the same run: the store alone replacing the same two documents per shopper
   (the last round's histories and recommendations, written back unguarded in groups of 128,
   as the job groups them; the median of three passes). Reported as a ratio: what the job costs
   on top of the writes it cannot avoid.

Needs a running scratch stack (e.g. the variables of a test slot, `recsys stack up`).

    .venv/bin/python bench/stream_capacity.py [--users 20000] [--events 5000] [--history 50]
        [--warmup 5] [--rounds 10]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import random
import shutil
import statistics
import sys
import time
import uuid
import zlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

from api import machine  # bench/ is on the path when a benchmark runs as a script
from freshness import PRODUCTS, seed_model, seed_store

from recsys_core.documents import HISTORY_MAX_ITEMS
from recsys_core.events import format_ts

RESULTS = Path(__file__).resolve().parent / "results"
DB_NAME = "bench_stream_capacity"
GROUP = 128


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU of a process, from /proc (clock ticks of 1/100 s)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / 100


def store_pid(settings) -> int | None:
    """FerretDB's pid when the stack runs it (None for a store elsewhere: its CPU is not measured)."""
    from recsys_stack.processes import ManagedProcess

    return ManagedProcess("mongo", settings.stack_dir).pid() if settings.mongo_is_local else None


def batch_frame(
    spark, rng: random.Random, users: int, events: int, partitions: int, clock: list[datetime], offset: list[int]
):
    """A DataFrame shaped like the Kafka source's (topic, partition, offset, value) and its distinct shoppers."""
    rows, shoppers = [], set()
    for _ in range(events):
        clock[0] += timedelta(milliseconds=1)
        offset[0] += 1
        user = f"fresh-{rng.randrange(users)}"
        partition = zlib.crc32(user.encode()) % partitions
        shoppers.add(user)
        event = {
            "event_id": str(uuid.uuid4()),
            "type": "product_view",
            "user_id": user,
            "product_id": rng.choice(PRODUCTS),
            "ts": format_ts(clock[0]),
        }
        rows.append(("recsys.events", partition, offset[0], bytearray(json.dumps(event).encode())))
    frame = spark.createDataFrame(rows, "topic string, partition int, offset long, value binary")
    # As the Kafka source reads a batch: a Spark partition per Kafka partition, its shoppers its own.
    frame = frame.repartitionByRange(partitions, "partition").sortWithinPartitions("offset").cache()
    frame.count()
    return frame, shoppers


def store_floor(db, shoppers: set[str]) -> dict:
    """The store alone: replace the shoppers' two documents as they are, in groups, unguarded."""
    from pymongo import ReplaceOne

    from recsys_io.mongo import HISTORY, RECOMMENDATIONS
    from streaming.store import read_by_id

    documents = {name: read_by_id(db[name], shoppers) for name in (HISTORY, RECOMMENDATIONS)}
    ids = sorted(shoppers)
    started = time.perf_counter()
    for start in range(0, len(ids), GROUP):
        for name, docs in documents.items():
            group = [ReplaceOne({"_id": i}, docs[i]) for i in ids[start : start + GROUP] if i in docs]
            if group:
                db[name].bulk_write(group, ordered=False)
    return {"shoppers": len(ids), "us_per_shopper": round((time.perf_counter() - started) * 1e6 / len(ids), 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=20_000, help="Shoppers the views are spread over.")
    parser.add_argument("--events", type=int, default=5_000, help="Product views per batch.")
    parser.add_argument(
        "--history",
        type=int,
        default=HISTORY_MAX_ITEMS,
        help="Views every shopper's history holds before the run (0: empty).",
    )
    parser.add_argument("--warmup", type=int, default=5, help="Untimed batches first (the job fills its caches).")
    parser.add_argument("--rounds", type=int, default=10, help="Timed batches.")
    args = parser.parse_args()

    from recsys_core.errors import RecsysError
    from recsys_core.settings import Settings
    from recsys_io.mongo import mongo_client, require_mongo
    from recsys_io.spark import get_spark
    from recsys_stack.servers import MongoServer

    settings = dataclasses.replace(Settings.from_env(), mongo_db=DB_NAME)
    try:
        require_mongo(settings)
    except RecsysError as error:
        raise SystemExit(
            f"{error}\nThe benchmark needs a running scratch stack: `recsys stack up` with a test "
            "slot's variables (see the top of this file)."
        ) from None
    client = mongo_client(settings)
    db, users = seed_store(client, DB_NAME, args.users, args.history)
    print("starting Spark ...", flush=True)
    spark = get_spark(settings, "recsys-bench-stream-capacity")
    spark.sparkContext.setLogLevel("ERROR")
    model_path = seed_model(spark, db, settings.data_dir / "bench" / DB_NAME, users)

    from streaming.batch import BatchProcessor

    processor = BatchProcessor(settings, spark)
    pid = store_pid(settings)
    rng, clock, offset = random.Random(1), [datetime.now(UTC) - timedelta(hours=1)], [0]
    rounds: list[dict] = []
    result: dict = {
        "name": "stream_capacity",
        "machine": machine(),
        "users": args.users,
        "events": args.events,
        "seeded_history_views": args.history,
        "warmup_rounds": args.warmup,
        "document_store": MongoServer(settings).kind if settings.mongo_is_local else settings.mongo_url,
    }
    try:
        for number in range(args.warmup + args.rounds):
            frame, shoppers = batch_frame(
                spark, rng, args.users, args.events, settings.events_partitions, clock, offset
            )
            store_cpu = process_cpu_seconds(pid) if pid else 0.0
            started = time.perf_counter()
            processor(frame, number)
            wall = time.perf_counter() - started
            job_cpu = processor.last_batch["cpu_seconds"]
            store_cpu = (process_cpu_seconds(pid) if pid else 0.0) - store_cpu
            frame.unpersist()
            row = {
                "shoppers": len(shoppers),
                "us_per_shopper": round(wall * 1e6 / len(shoppers), 1),
                "store_cpu_us_per_shopper": round(store_cpu * 1e6 / len(shoppers), 1) if pid else None,
                "tasks_python_cpu_us_per_shopper": round(job_cpu * 1e6 / len(shoppers), 1),
            }
            timed = number >= args.warmup
            if timed:
                rounds.append(row)
            print(f"{'round' if timed else 'warm-up'} {number}: {row}", flush=True)
        result["rounds"] = rounds
        result["job"] = {
            key: round(statistics.median(r[key] for r in rounds), 1)
            for key in rounds[0]
            if key != "shoppers" and rounds[0][key] is not None
        }
        result["job"]["shoppers_per_second"] = round(1e6 / result["job"]["us_per_shopper"])
        floors = [store_floor(db, shoppers) for _ in range(3)]  # the median of three: one pass is ~1 s
        result["baseline_store_replace"] = {
            "shoppers": len(shoppers),
            "us_per_shopper": statistics.median(floor["us_per_shopper"] for floor in floors),
        }
        result["ratio_to_baseline"] = round(
            result["job"]["us_per_shopper"] / result["baseline_store_replace"]["us_per_shopper"], 2
        )
        print(json.dumps({k: v for k, v in result.items() if k != "rounds"}, indent=1), flush=True)
    finally:
        processor.close()
        spark.stop()
        RESULTS.mkdir(exist_ok=True)
        (RESULTS / "stream_capacity.json").write_text(json.dumps(result, indent=1, default=str))
        client.drop_database(DB_NAME)
        client.close()
        shutil.rmtree(model_path, ignore_errors=True)
    print(f"written to {RESULTS / 'stream_capacity.json'}")


if __name__ == "__main__":
    sys.exit(main())
