"""Benchmark: events/s of `recsys simulate history` straight to Kafka, against the raw producer.

Baseline, measured in the same run on the same broker: the same producer sending the same number
of pre-generated, pre-serialised records (no simulation, no encoding). The ratio says how much of
the producer's speed the simulator keeps. kafka-python's producer is measured too, on a smaller
sample, to show why the backfill uses librdkafka. Needs a running stack (`recsys stack up`).

    .venv/bin/python bench/simulate.py [--users 2000] [--products 500] [--categories 12] [--days 60]
"""

from __future__ import annotations

import argparse
import json
import os
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import msgspec
from api import machine  # bench/ is on the path when a benchmark runs as a script: one description of the machine

from recsys_core.settings import Settings
from recsys_io.kafka import ensure_topics, make_producer
from recsys_io.kafka_bulk import make_bulk_producer
from recsys_simulator import StoreConfig, build_store, history_events, send_history
from recsys_simulator.backfill import events_partitions

RESULTS = Path(__file__).resolve().parent / "results"
KAFKA_PYTHON_SAMPLE = 50_000


def raw_bulk(settings: Settings, records: list[tuple[bytes, bytes]]) -> float:
    """Events/s of librdkafka alone, records ready as bytes."""
    producer = make_bulk_producer(settings)
    started = time.perf_counter()
    for key, value in records:
        while True:
            try:
                producer.produce(settings.topics.events, value=value, key=key)
                break
            except BufferError:
                producer.poll(0.05)
        producer.poll(0)
    if producer.flush(120):
        raise SystemExit("the raw producer could not deliver everything")
    return len(records) / (time.perf_counter() - started)


def raw_kafka_python(settings: Settings, records: list[tuple[bytes, bytes]]) -> float:
    producer = make_producer(settings, linger_ms=50, batch_size=512 * 1024)
    started = time.perf_counter()
    for key, value in records:
        producer.send(settings.topics.events, key=key, value=value)
    producer.flush()
    rate = len(records) / (time.perf_counter() - started)
    producer.close()
    return rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=2000)
    parser.add_argument("--products", type=int, default=500)
    parser.add_argument("--categories", type=int, default=12)
    parser.add_argument("--days", type=int, default=60)
    args = parser.parse_args()
    settings = Settings.from_env()
    ensure_topics(settings)
    info = machine()
    print(
        f"machine: {info['platform']}, Python {info['python']}, {info['cpus']} CPUs, {info['memory_gib']} GiB, "
        f"load average {info['load_average_1m_at_start']:.1f}"
    )

    run = uuid.uuid4().hex[:8]
    end = datetime.now(UTC)
    config = dict(products=args.products, categories=args.categories, users=args.users)
    store = build_store(StoreConfig(**config, user_prefix=f"bench-{run}-"))
    started = time.perf_counter()
    events = list(history_events(build_store(StoreConfig(**config, user_prefix=f"bench-raw-{run}-")), args.days, end))
    generation_rate = len(events) / (time.perf_counter() - started)
    records = [(e["user_id"].encode(), msgspec.json.encode(e)) for e in events]
    workers = events_partitions(settings)
    print(
        f"store: {args.products} products, {args.categories} categories, {args.users} users, {args.days} days "
        f"-> {len(events):,} events (generation alone: {generation_rate:,.0f} events/s)"
    )

    baseline = raw_bulk(settings, records)
    print(f"baseline, raw bulk producer, pre-serialised bytes: {baseline:,.0f} events/s")
    tally = send_history(settings, store, args.days, end=end)
    simulated = tally.rate
    print(
        f"simulate history (generate + encode + produce):     {simulated:,.0f} events/s "
        f"({tally.events:,} events in {tally.elapsed:.1f}s)"
    )
    parallel = send_history(
        settings,
        build_store(StoreConfig(**config, user_prefix=f"bench-par-{run}-")),
        args.days,
        end=end,
        workers=workers,
    ).rate
    print(f"simulate history --workers {workers}:                       {parallel:,.0f} events/s")
    sample = records[:KAFKA_PYTHON_SAMPLE]
    kafka_python = raw_kafka_python(settings, sample)
    print(f"kafka-python producer, pre-serialised bytes:        {kafka_python:,.0f} events/s ({len(sample):,} events)")
    ratio = simulated / baseline
    print(
        f"ratio simulate history / raw bulk producer: {ratio:.2f}; "
        f"raw bulk / kafka-python: {baseline / kafka_python:.1f}x; target >= 20,000 events/s: "
        f"{'met' if simulated >= 20_000 else 'NOT met'}"
    )

    RESULTS.mkdir(exist_ok=True)
    result = {
        "benchmark": "simulate",
        "at": end.isoformat(),
        "machine": info,
        "load_average_1m_at_end": os.getloadavg()[0],
        "store": {**config, "days": args.days},
        "events": tally.events,
        "generation_events_per_s": round(generation_rate),
        "baseline_raw_bulk_events_per_s": round(baseline),
        "simulate_history_events_per_s": round(simulated),
        "simulate_history_parallel_processes": workers,
        "simulate_history_parallel_events_per_s": round(parallel),
        "ratio_simulate_to_baseline": round(ratio, 3),
        "kafka_python_raw_events_per_s": round(kafka_python),
        "target_events_per_s": 20_000,
    }
    (RESULTS / "simulate.json").write_text(json.dumps(result, indent=2))
    print(f"written {RESULTS / 'simulate.json'}")


if __name__ == "__main__":
    main()
