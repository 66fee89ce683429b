"""Benchmark: how fresh the speed layer keeps recommendations, and how many events/s it sustains.

1. Serves the real API (`recsys api`) and runs the real job (`recsys stream`) as subprocesses, on
   a database of their own (`bench_freshness`, dropped at the end) with a small catalog,
   neighbour table and promoted model (rank 32, knowing every second shopper), and a fresh
   checkpoint starting at the end of the topic. Every shopper starts with a full history
   (--history, 50 views by default), as in a store that has run a while: the documents the job
   reads and rewrites grow with the history, so empty ones flatter it, and so would scoring
   without a model.
2. Posts product views through `POST /v1/events` at a steady rate (batches every 20 ms), each
   with its own event time, over a pool of shoppers.
   The first --warmup seconds (20 by default) at the steady rate are not timed: the JVM compiles
   its hot paths and the job fills its caches, and the batches they slow down take a while to
   shrink back.
3. A watcher reads `recommendations` every 100 ms: an event is fresh when its shopper's
   document has `last_event_ts` >= the event's time. Freshness = that moment minus the API's 202
   (so it includes up to 100 ms of polling). It follows the events of a sample of the shoppers
   (--probes, 100 of 2,000 by default, so about 1 event in 20): reading every shopper's document
   ten times a second would cost the store more than the job's own writes do. Its reads grow
   with the lag (pending probes x 10/s), so too many probes take CPU from the store and feed the
   lag they measure (figures in docs/streaming.md).
4. Baseline, in the same run: a plain Kafka consumer on recsys.events records when each event
   becomes readable; that transport floor is what any speed layer pays. Reported as a ratio.
5. Then steps the rate up (60 s per step) to find the highest rate whose backlog (events posted
   and not yet reflected) stays flat after its first quarter (the climb to what is in flight)
   and drains within 10 s after posting stops.

Needs a running scratch stack (e.g. the variables of a test slot, `recsys stack up`); it writes
events to that stack's recsys.events.

    .venv/bin/python bench/freshness.py [--rate 500] [--seconds 60] [--warmup 20] [--steps 1000,1500,2000]
        [--users 2000] [--history 50] [--probes 100] [--out bench/results/freshness.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from api import machine  # bench/ is on the path when a benchmark runs as a script: one description of the machine

from recsys_core.documents import HISTORY_MAX_ITEMS
from recsys_core.events import format_ts
from recsys_stack.processes import ManagedProcess

RESULTS = Path(__file__).resolve().parent / "results"
ROOT = Path(__file__).resolve().parents[1]
RECSYS = Path(sys.executable).with_name("recsys")
DB_NAME = "bench_freshness"
PRODUCTS = [f"fp{i}" for i in range(500)]
BATCH_EVERY = 0.02
POLL_SECONDS = 0.1


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def seed(db) -> None:
    from recsys_io.mongo import BESTSELLERS, SIMILAR_ITEMS
    from recsys_io.mongo import PRODUCTS as PRODUCTS_COLLECTION

    now = datetime.now(UTC)
    db[PRODUCTS_COLLECTION].insert_many(
        [
            {
                "_id": p,
                "product_id": p,
                "category_id": f"c{i % 10}",
                "name": p,
                "price": 1.0,
                "attributes": {},
                "updated_at": now,
            }
            for i, p in enumerate(PRODUCTS)
        ]
    )
    db[SIMILAR_ITEMS].insert_many(
        [
            {
                "_id": p,
                "product_id": p,
                "source": "als",
                "model_version": "bench",
                "computed_at": now,
                "neighbours": [{"product_id": PRODUCTS[(i + k) % len(PRODUCTS)], "score": 1 / k} for k in range(1, 11)],
            }
            for i, p in enumerate(PRODUCTS)
        ]
    )
    db[BESTSELLERS].insert_many(
        [
            {
                "_id": f"c{c}",
                "scope": f"c{c}",
                "window_days": 30,
                "computed_at": now,
                "products": [{"product_id": p, "buyers": 100 - j} for j, p in enumerate(PRODUCTS[c::10][:30])],
            }
            for c in range(10)
        ]
    )


def seed_model_apart(db_name: str, models_dir: Path, users: list[str]) -> None:
    """`seed_model` in a child process, so that the Spark JVM it needs exits before the measuring starts."""
    import multiprocessing

    child = multiprocessing.get_context("spawn").Process(target=_seed_model_child, args=(db_name, models_dir, users))
    child.start()
    child.join()
    if child.exitcode != 0:
        raise SystemExit(f"writing the benchmark's model failed (exit code {child.exitcode})")


def _seed_model_child(db_name: str, models_dir: Path, users: list[str]) -> None:
    from recsys_core.settings import Settings
    from recsys_io.mongo import mongo_client
    from recsys_io.spark import get_spark

    settings = Settings.from_env()
    print("writing a promoted model with Spark ...", flush=True)
    spark = get_spark(settings, "recsys-bench-model")
    spark.sparkContext.setLogLevel("ERROR")
    client = mongo_client(settings)
    try:
        seed_model(spark, client[db_name], models_dir, users)
    finally:
        client.close()
        spark.stop()


def seed_model(spark, db, models_dir: Path, users: list[str], known_every: int = 2) -> str:
    """Promote a model of the production rank over the catalog, knowing every `known_every`-th shopper.

    A store that has run a while has a promoted model, and scoring against it is part of what the
    job does for every shopper: without one, every list would come from neighbours and
    bestsellers alone. The others get the stand-in vector of their recent views. Returns its path.
    """
    import random

    from recsys_assets.als_training import AlsParams
    from recsys_io.registry import promote_model, register_model

    rank, rng = AlsParams().rank, random.Random(2)
    version = f"bench-{uuid.uuid4().hex[:8]}"
    path = models_dir / "als" / version
    schema = "id string, features array<float>"
    for name, ids in (("item_factors", PRODUCTS), ("user_factors", users[::known_every])):
        rows = [(i, [rng.gauss(0.0, 0.3) for _ in range(rank)]) for i in ids]
        spark.createDataFrame(rows, schema).coalesce(1).write.parquet(str(path / name))
    register_model(
        db,
        {
            "_id": version,
            "version": version,
            "params": {"rank": rank},
            "metrics": {},
            "checks_passed": True,
            "promoted": False,
            "promoted_at": None,
            "created_at": datetime.now(UTC),
            "path": str(path),
        },
    )
    promote_model(db, version)
    return str(path)


def seed_store(client, db_name: str, shoppers: int, views: int):
    """A fresh database `db_name` with the catalog and `shoppers` histories of `views` views: (db, user ids)."""
    client.drop_database(db_name)
    db = client[db_name]
    seed(db)
    users = [f"fresh-{i}" for i in range(shoppers)]
    seed_histories(db, users, views)
    return db, users


def seed_histories(db, users: list[str], views: int) -> None:
    """Give every shopper a history of `views` distinct views a day old, as the job writes them.

    A long-running store holds full histories (50 views); the documents the job reads and
    rewrites grow with them, so a run that starts from empty histories measures a lighter load.
    """
    import random

    from recsys_core.history import history_after
    from recsys_io.mongo import HISTORY

    if views <= 0:
        return
    rng, started = random.Random(0), datetime.now(UTC) - timedelta(days=1)
    print(f"seeding {len(users):,} histories of {views} views ...", flush=True)
    for start in range(0, len(users), 1000):
        documents = []
        for user in users[start : start + 1000]:
            events = [
                {
                    "type": "product_view",
                    "user_id": user,
                    "product_id": product,
                    "ts": format_ts(started + timedelta(seconds=i)),
                }
                for i, product in enumerate(rng.sample(PRODUCTS, views))
            ]
            documents.append(
                {"_id": user, "user_id": user, **history_after(None, events).to_fields(), "updated_at": started}
            )
        db[HISTORY].insert_many(documents, ordered=False)


def judge(phase: dict, rate: int) -> None:
    """Sustained: the backlog did not grow during the phase and drained within 10 s after it.

    The backlog starts at 0 and climbs to what is in flight at that rate (rate x latency) in the
    first seconds; that climb is not growth, so the first quarter is left out of the comparison.
    Growing: the second half's mean backlog is over 1.5x the first half's and more than one
    second of timed events above it. With 100 probes over 20,000 shoppers only ~5 events a second
    are timed, and a backlog of 4.5 then 7.5 is noise, not a job falling behind.
    """
    samples = phase["backlog_per_second"]
    timed_per_second = phase["freshness_seconds"]["count"] / max(1, len(samples))
    samples = samples[len(samples) // 4 :]
    half = len(samples) // 2
    first, second = statistics.fmean(samples[:half] or [0]), statistics.fmean(samples[half:] or [0])
    phase["backlog_growing"] = bool(samples) and second > 1.5 * max(1.0, first) and second - first > timed_per_second
    phase["sustained"] = (
        not phase["backlog_growing"]
        and phase["drained_after_seconds"] is not None
        and phase["drained_after_seconds"] <= 10
        and phase["achieved_rate"] >= 0.9 * rate
    )


class Tracker:
    """Events of the probe shoppers posted and not yet reflected, by shopper; latencies of the reflected ones."""

    def __init__(self, probes: set[str] | None = None) -> None:
        self.probes = probes  # None: every shopper
        self.lock = threading.Lock()
        self.pending: dict[str, list[tuple[datetime, float]]] = {}  # user -> [(event ts, 202 time)]
        self.latencies: list[float] = []
        self.transport: dict[str, float] = {}  # event_id -> readable in Kafka
        self.accepted: dict[str, float] = {}  # event_id -> 202 time

    def posted(self, events: list[dict], at: float) -> None:
        with self.lock:
            for event in events:
                if self.probes is not None and event["user_id"] not in self.probes:
                    continue
                ts = datetime.fromisoformat(event["ts"].replace("Z", "+00:00"))
                self.pending.setdefault(event["user_id"], []).append((ts, at))
                self.accepted[event["event_id"]] = at

    def backlog(self) -> int:
        with self.lock:
            return sum(len(v) for v in self.pending.values())

    def watch(self, db, stop: threading.Event) -> None:
        from recsys_io.mongo import RECOMMENDATIONS

        while not stop.is_set():
            # Only the shoppers with events still pending, by id (an index lookup).
            with self.lock:
                waiting_users = list(self.pending)
            if waiting_users:
                docs = [
                    doc
                    for start in range(0, len(waiting_users), 200)
                    for doc in db[RECOMMENDATIONS].find(
                        {"_id": {"$in": waiting_users[start : start + 200]}}, {"last_event_ts": 1}
                    )
                ]
                now = time.monotonic()
                with self.lock:
                    for doc in docs:
                        waiting = self.pending.get(doc["_id"], [])
                        done = [
                            (ts, at) for ts, at in waiting if doc.get("last_event_ts") and doc["last_event_ts"] >= ts
                        ]
                        self.latencies.extend(now - at for _, at in done)
                        left = [item for item in waiting if item not in done]
                        if left:
                            self.pending[doc["_id"]] = left
                        else:
                            self.pending.pop(doc["_id"], None)
            stop.wait(POLL_SECONDS)

    def consume(self, settings, stop: threading.Event, ready: threading.Event) -> None:
        from recsys_io.kafka import make_consumer

        # The broker answers a fetch once it has 16 KB or 20 ms have passed: fetching back to back
        # would take CPU from the job it measures (docs/streaming.md). It adds at most 20 ms to the
        # transport figure.
        consumer = make_consumer(
            settings,
            settings.topics.events,
            group_id=None,
            auto_offset_reset="latest",
            consumer_timeout_ms=200,
            fetch_max_wait_ms=20,
            fetch_min_bytes=16_384,
        )
        consumer.poll(timeout_ms=1000)
        ready.set()
        try:
            while not stop.is_set():
                for records in consumer.poll(timeout_ms=100).values():
                    now = time.monotonic()
                    for record in records:
                        if isinstance(record.value, dict) and "event_id" in record.value:
                            self.transport[record.value["event_id"]] = now
        finally:
            consumer.close()


def post_load(client: httpx.Client, tracker: Tracker, rate: int, seconds: float, users: list[str]) -> dict:
    """Post views at `rate` events/s for `seconds`; returns what was sent and how steadily."""
    import random

    rng = random.Random(rate)
    per_batch = max(1, round(rate * BATCH_EVERY))
    started = time.monotonic()
    sent = failed = 0
    backlog_samples = []
    next_sample = started + 1
    tick = 0
    while time.monotonic() - started < seconds:
        due = started + tick * BATCH_EVERY
        tick += 1
        delay = due - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        now = datetime.now(UTC)
        events = [
            {
                "event_id": str(uuid.uuid4()),
                "type": "product_view",
                "user_id": rng.choice(users),
                "product_id": rng.choice(PRODUCTS),
                "ts": now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z",
            }
            for _ in range(per_batch)
        ]
        answer = client.post("/v1/events", json={"events": events})
        if answer.status_code == 202:
            tracker.posted(events, time.monotonic())
            sent += len(events)
        else:
            failed += len(events)
        if time.monotonic() >= next_sample:
            backlog_samples.append(tracker.backlog())
            next_sample += 1
    elapsed = time.monotonic() - started
    return {
        "target_rate": rate,
        "posted": sent,
        "failed": failed,
        "achieved_rate": round(sent / elapsed, 1),
        "backlog_per_second": backlog_samples,
    }


def drain(tracker: Tracker, timeout: float) -> float | None:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if tracker.backlog() == 0:
            return round(time.monotonic() - started, 2)
        time.sleep(0.1)
    return None


def latency_summary(values: list[float]) -> dict:
    return {
        "count": len(values),
        **{f"p{q}": round(percentile(values, q / 100), 3) if values else None for q in (50, 95, 99)},
        "mean": round(statistics.fmean(values), 3) if values else None,
    }


def start(name: str, command: list[str], env: dict, run_dir: Path) -> ManagedProcess:
    """`command` with its log in run_dir/logs; stopping it stops its whole group (the job's JVM too)."""
    process = ManagedProcess(name, run_dir, whole_group=True)
    process.start(command, env, cwd=ROOT)
    return process


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=int, default=500, help="Steady rate for the freshness figures (events/s).")
    parser.add_argument("--seconds", type=float, default=60, help="How long the steady rate runs (timed).")
    parser.add_argument(
        "--warmup",
        type=float,
        default=20,
        help="Seconds at the steady rate before timing starts (JIT, the job's caches).",
    )
    parser.add_argument("--steps", default="1000,1500,2000", help="Rates tried for the sustained maximum.")
    parser.add_argument(
        "--step-seconds",
        type=float,
        default=60,
        help="How long each step runs (a slowly growing backlog needs a minute to show).",
    )
    parser.add_argument("--users", type=int, default=2000, help="Shoppers the views are spread over.")
    parser.add_argument(
        "--history",
        type=int,
        default=HISTORY_MAX_ITEMS,
        help="Views every shopper's history holds before the run (default: full, as in a store "
        "that has run a while; 0: empty).",
    )
    parser.add_argument(
        "--probes",
        type=int,
        default=100,
        help="Shoppers whose events are timed (the watcher reads only their documents, ten "
        "times a second while an event is pending, so the more probes and the more lag, "
        "the more it takes from the store: keep it near 100).",
    )
    parser.add_argument("--out", type=Path, default=RESULTS / "freshness.json", help="Where the results go (JSON).")
    args = parser.parse_args()

    from recsys_core.errors import RecsysError
    from recsys_core.settings import Settings
    from recsys_io.mongo import mongo_client, require_mongo
    from recsys_simulator.publishers import require_kafka
    from recsys_stack.servers import MongoServer

    settings = Settings.from_env()
    try:
        require_mongo(settings)
        require_kafka(settings)
    except RecsysError as error:
        raise SystemExit(
            f"{error}\nThe benchmark needs a running scratch stack: `recsys stack up` with a test "
            "slot's variables (see the top of this file)."
        ) from None
    run_dir = settings.data_dir / "bench" / f"freshness-{int(time.time())}"
    run_dir.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "RECSYS_MONGO_DB": DB_NAME,
        "RECSYS_DATA_DIR": str(run_dir),
        "RECSYS_TOOLS_DIR": str(settings.tools_dir),
        "RECSYS_API_KEYS": "",
        "RECSYS_STREAM_STARTING_OFFSETS": "latest",
    }
    client = mongo_client(settings)
    db, users = seed_store(client, DB_NAME, args.users, args.history)
    seed_model_apart(DB_NAME, run_dir / "models", users)
    tracker, stopping, consumer_ready = Tracker(), threading.Event(), threading.Event()
    api = start("api", [str(RECSYS), "api"], env, run_dir)
    job = start("stream", [str(RECSYS), "stream"], env, run_dir)
    result: dict = {
        "name": "freshness",
        "machine": machine(),
        "trigger_seconds": settings.stream_trigger_seconds,
        "max_events_per_batch": settings.stream_max_events_per_batch,
        "users": args.users,
        "warmup_seconds": args.warmup,
        "poll_seconds": POLL_SECONDS,
        "probe_users": min(args.probes, args.users),
        "seeded_history_views": args.history,
        "document_store": MongoServer(settings).kind if settings.mongo_is_local else settings.mongo_url,
    }
    try:
        http = httpx.Client(base_url=f"http://{settings.api_host}:{settings.api_port}", timeout=10)
        warm_user = f"warm-{uuid.uuid4().hex[:6]}"
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            try:
                if http.get("/ready").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.5)
        threading.Thread(target=tracker.watch, args=(db, stopping), daemon=True).start()
        threading.Thread(target=tracker.consume, args=(settings, stopping, consumer_ready), daemon=True).start()
        consumer_ready.wait(30)
        print("waiting for the job to start and read the topic's backlog ...", flush=True)
        deadline = time.monotonic() + 300
        while True:
            # The query starts at the end of the topic once its JVM is up: views sent before that are
            # never read, so keep sending until one comes through.
            with tracker.lock:
                tracker.pending.clear()
            post_load(http, tracker, 50, 1, [warm_user])
            if drain(tracker, 10) is not None:
                break
            if time.monotonic() > deadline:
                raise SystemExit(f"the stream did not start within 300 s; see {job.log_file}")

        if args.warmup > 0:
            print(f"warm-up: {args.rate} events/s for {args.warmup:.0f} s, not timed ...", flush=True)
            with tracker.lock:
                tracker.probes = set()
            post_load(http, tracker, args.rate, args.warmup, users)
        with tracker.lock:
            tracker.probes = set(users[: args.probes])
        print(f"steady {args.rate} events/s for {args.seconds:.0f} s ...", flush=True)
        tracker.latencies.clear()
        steady = post_load(http, tracker, args.rate, args.seconds, users)
        steady["drained_after_seconds"] = drain(tracker, 60)
        steady["freshness_seconds"] = latency_summary(tracker.latencies)
        judge(steady, args.rate)
        transport = [tracker.transport[e] - at for e, at in tracker.accepted.items() if e in tracker.transport]
        steady["baseline_kafka_readable_seconds"] = latency_summary(transport)
        if transport and tracker.latencies:
            steady["p95_ratio_to_baseline"] = round(
                percentile(tracker.latencies, 0.95) / percentile(transport, 0.95), 1
            )
        result["steady"] = steady
        print(json.dumps(steady, indent=1), flush=True)

        result["steps"] = []
        for rate in [int(r) for r in args.steps.split(",") if r]:
            print(f"step {rate} events/s for {args.step_seconds:.0f} s ...", flush=True)
            tracker.latencies.clear()
            step = post_load(http, tracker, rate, args.step_seconds, users)
            step["drained_after_seconds"] = drain(tracker, 120)
            step["freshness_seconds"] = latency_summary(tracker.latencies)
            judge(step, rate)
            result["steps"].append(step)
            print(json.dumps({k: v for k, v in step.items() if k != "backlog_per_second"}), flush=True)
            if not step["sustained"]:
                break
        sustained = [s["achieved_rate"] for s in [steady, *result["steps"]] if s["sustained"]]
        result["highest_sustained_events_per_second"] = max(sustained, default=None)
    finally:
        stopping.set()
        api.stop(60)
        job.stop(60)
        # What was measured is kept even when a phase failed or the run was interrupted.
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=1, default=str))
        client.drop_database(DB_NAME)
        client.close()
    print(json.dumps({k: v for k, v in result.items() if k not in ("steady", "steps")}, indent=1))
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
