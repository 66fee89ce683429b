"""Benchmark: does the work reach Spark's executors, and does more of them buy more throughput?

Starts a scratch stack of its own (Kafka, FerretDB and a Spark standalone cluster of --workers
workers × 1 core, on ports from --port-base, data in --data-dir) and stops it at the end
(--keep-stack leaves it up). Every figure is printed with the machine it ran on; each
comparison is a ratio against a baseline measured in the same run. Parts (--part, comma-separated):

cpu        The share of the stream job's CPU time spent on executors. `recsys stream` runs on the
           cluster over --shoppers shoppers with full histories (50 views) and a promoted rank-32
           model knowing every second one (bench/freshness.py's seeding); product views go
           straight to Kafka at --rate (1,000 events/s). After --warmup seconds, CPU times
           (utime + stime, and cutime + cstime of exited children) are read from /proc every
           0.5 s for --seconds: the executor JVMs (CoarseGrainedExecutorBackend under the
           stack's workers) with their Python workers, against the driver's process tree (the
           `recsys stream` Python and its JVM). Goal: >= 80 % on executors.
memory     The driver's peak memory during a full model refresh at 1x and 10x: the simulated
           store (`recsys simulate catalog` + `history`) with --shoppers / 10 and --shoppers
           shoppers over the same --days, its days ingested (`recsys materialize raw_events`),
           then every other asset in one `recsys materialize` (interactions -> als_model ->
           current_model -> user_recommendations, item_similarities, ...), with a small search
           (one regParam, one alpha, 5 iterations) so the fits do not dominate. RSS of the
           `recsys materialize` Python and its JVM, sampled every 0.5 s. Goal: <= 1.2x growth.
workers    Stream throughput on 1 worker against 2 workers of 1 core each, same run: a backlog of
           --backlog views (default 2 x --shoppers), one per shopper in turn so a batch's
           shoppers are distinct, on a topic of 4 partitions, drained by `recsys stream --once`
           from the earliest offset in batches of 5,000. Shoppers/s = shoppers written / time in
           batches, leaving out the first batch (executors starting, Python workers loading the
           model). The cluster is resized between the two runs; histories and recommendations
           are seeded afresh before each.
freshness  bench/freshness.py on the cluster (--rate 500 by default via --freshness-rate, no steps),
           and before it, in the same run, the engine's floor: a trivial Structured Streaming
           query on the same topic whose foreachBatch runs one task per Kafka partition on
           the executors recording when each view arrives there (from the view's `ts`, set just
           before it is sent; freshness.py counts from the API's 202, a few ms later). Goal:
           freshness p95 <= 2 s.

Results go to bench/results/scale.json (a part run alone replaces only its own entry).

    PYTHONPATH=. .venv/bin/python bench/scale.py [--part cpu,memory,workers,freshness]
        [--shoppers 20000] [--seconds 60] [--warmup 30] [--rate 1000] [--days 30]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from api import machine  # bench/ is on the path when a benchmark runs as a script
from freshness import PRODUCTS, percentile, seed_histories, seed_model_apart, seed_store, start

from recsys_core.documents import HISTORY_MAX_ITEMS
from recsys_core.events import format_ts

RESULTS = Path(__file__).resolve().parent / "results"
ROOT = Path(__file__).resolve().parents[1]
RECSYS = Path(sys.executable).with_name("recsys")
PARTS = ("cpu", "memory", "workers", "freshness")
SMALL_SEARCH = {"ops": {"als_model": {"config": {"search_reg_params": [1.0], "search_alphas": [1.0], "max_iter": 5}}}}
SAMPLE_EVERY = 0.5
EXECUTOR_CLASS = "CoarseGrainedExecutorBackend"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_BYTES = os.sysconf("SC_PAGE_SIZE")


def say(message: str) -> None:
    print(f"[{datetime.now():%H:%M:%S}] {message}", flush=True)


# --- processes ---------------------------------------------------------------------------------
def process_table() -> dict[int, tuple[int, str]]:
    """Every live process: pid -> (parent pid, command line)."""
    table = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except (OSError, IndexError, ValueError):
            continue
        table[int(entry.name)] = (ppid, command)
    return table


def descendants(table: dict[int, tuple[int, str]], roots: set[int]) -> set[int]:
    """`roots` and every process below them."""
    found, frontier = set(roots) & set(table), set(roots) & set(table)
    while frontier:
        frontier = {pid for pid, (ppid, _) in table.items() if ppid in frontier} - found
        found |= frontier
    return found


def cpu_and_rss(pid: int) -> tuple[float, int] | None:
    """CPU seconds of the process and of its children that exited (cutime, cstime), and its RSS in bytes."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return sum(int(f) for f in fields[11:15]) / CLOCK_TICKS, int(fields[21]) * PAGE_BYTES


def executor_roots(table: dict[int, tuple[int, str]], worker_pids: set[int]) -> set[int]:
    """The executor JVMs the stack's workers started (their Python workers are their children)."""
    return {pid for pid in descendants(table, worker_pids) if EXECUTOR_CLASS in table[pid][1]}


class ProcessGroups(threading.Thread):
    """Samples named groups of processes every 0.5 s: CPU used since `start`, and the peak of each group's RSS.

    `select` names each group's root pids from the process table; a group is its roots and their
    descendants, found again at every sample so that processes started meanwhile count. A process
    that exits while its parent is in the group was reaped by it, so its CPU is in the parent's
    cutime/cstime and not counted twice; one whose parent is outside (an executor JVM under a
    worker) keeps the CPU last seen.
    """

    def __init__(self, select: Callable[[dict[int, tuple[int, str]]], dict[str, set[int]]]):
        super().__init__(daemon=True)
        self.select = select
        self.stopping = threading.Event()
        self.first: dict[tuple[str, int], float] = {}
        self.last: dict[tuple[str, int], float] = {}
        self.parent: dict[tuple[str, int], int] = {}
        self.alive: dict[str, set[int]] = {}
        self.peak_rss: dict[str, int] = {}
        self.sample(first=True)

    def sample(self, first: bool = False) -> None:
        table = process_table()
        for name, roots in self.select(table).items():
            members = descendants(table, roots)
            self.alive[name] = set()
            rss_total = 0
            for pid in members:
                reading = cpu_and_rss(pid)
                if reading is None:
                    continue
                cpu, rss = reading
                key = (name, pid)
                # A process born after the first sample used all its CPU inside the window.
                self.first.setdefault(key, cpu if first else 0.0)
                self.last[key], self.parent[key] = cpu, table[pid][0]
                self.alive[name].add(pid)
                rss_total += rss
            self.peak_rss[name] = max(self.peak_rss.get(name, 0), rss_total)

    def run(self) -> None:
        while not self.stopping.wait(SAMPLE_EVERY):
            self.sample()

    def finish(self) -> dict[str, dict]:
        self.stopping.set()
        self.join()
        self.sample()
        result = {}
        for name in self.alive:
            seen = {pid for group, pid in self.last if group == name}
            counted = {
                pid for pid in seen if pid in self.alive[name] or self.parent[(name, pid)] not in self.alive[name]
            }
            result[name] = {
                "cpu_seconds": round(sum(self.last[(name, pid)] - self.first[(name, pid)] for pid in counted), 2),
                "peak_rss_mib": round(self.peak_rss.get(name, 0) / 2**20, 1),
                "processes_seen": len(seen),
            }
        return result


# --- the scratch stack -------------------------------------------------------------------------
def stack_env(args) -> dict[str, str]:
    """The stack's variables: ports from --port-base unless set, data in --data-dir."""
    from recsys_core.settings import Settings

    base = args.port_base
    env = {**os.environ, "RECSYS_DATA_DIR": str(args.data_dir.resolve()), "RECSYS_SPARK_WORKER_CORES": "1"}
    defaults = {
        "RECSYS_KAFKA_PORT": base,
        "RECSYS_KAFKA_CONTROLLER_PORT": base + 1,
        "RECSYS_MONGO_PORT": base + 2,
        "RECSYS_API_PORT": base + 3,
        "RECSYS_DAGSTER_PORT": base + 4,
        "RECSYS_POSTGRES_PORT": base + 5,
        "RECSYS_SPARK_MASTER_PORT": base + 10,  # worker i listens on + i
        "RECSYS_SPARK_WEBUI_PORT": base + 20,
    }
    for name, port in defaults.items():
        env.setdefault(name, str(port))
    env["RECSYS_SPARK_WORKERS"] = str(args.workers)
    # Each part's processes keep their checkpoints and models in a data dir of their own: the tools stay the stack's.
    env.setdefault("RECSYS_TOOLS_DIR", str(Settings.from_env(env).tools_dir))
    return env


def cluster_of(env: dict[str, str], workers: int):
    """Bring the stack up with `workers` Spark workers (stopping the ones above); returns its settings."""
    from recsys_core.settings import Settings
    from recsys_stack import manager
    from recsys_stack.servers import SparkWorkerServer

    env["RECSYS_SPARK_WORKERS"] = str(workers)
    settings = Settings.from_env(env)
    running = sorted(int(p.stem.rsplit("-", 1)[1]) for p in (settings.stack_dir / "run").glob("spark-worker-*.pid"))
    for index in reversed([i for i in running if i > workers]):
        say(f"stopping Spark worker {index}")
        SparkWorkerServer(settings, index).stop()
    say(f"stack up with {workers} Spark worker(s) x {settings.spark_worker_cores} core ...")
    manager.up(settings)
    return settings


def worker_pids(settings) -> set[int]:
    from recsys_stack.processes import ManagedProcess

    pids = {ManagedProcess(f"spark-worker-{i}", settings.stack_dir).pid() for i in range(1, settings.spark_workers + 1)}
    return {pid for pid in pids if pid}


def part_env(env: dict[str, str], run_dir: Path, db_name: str, **extra: str) -> dict[str, str]:
    """The variables of a part's own processes: its database, data dir (checkpoints, models) and more."""
    run_dir.mkdir(parents=True, exist_ok=True)
    return {**env, "RECSYS_MONGO_DB": db_name, "RECSYS_DATA_DIR": str(run_dir), "RECSYS_API_KEYS": "", **extra}


def stack_settings(env: dict[str, str]):
    """Settings of a part's processes, with the stack's tools (its data dir is the part's)."""
    from recsys_core.settings import Settings

    return Settings.from_env(env)


# --- load --------------------------------------------------------------------------------------
def view(user: str, product: str) -> dict:
    return {
        "event_id": str(uuid.uuid4()),
        "type": "product_view",
        "user_id": user,
        "product_id": product,
        "ts": format_ts(datetime.now(UTC)),
    }


def produce_at_rate(producer, topic: str, rate: int, seconds: float, users: list[str]) -> dict:
    """Views at `rate` events/s for `seconds`, straight to Kafka keyed by shopper, in ticks of 20 ms."""
    import random

    rng, every = random.Random(rate), 0.02
    per_tick = max(1, round(rate * every))
    started, tick, sent = time.monotonic(), 0, 0
    while time.monotonic() - started < seconds:
        delay = started + tick * every - time.monotonic()
        tick += 1
        if delay > 0:
            time.sleep(delay)
        for _ in range(per_tick):
            user = rng.choice(users)
            producer.send(topic, key=user, value=view(user, rng.choice(PRODUCTS)))
        sent += per_tick
    producer.flush()
    return {"target_rate": rate, "sent": sent, "achieved_rate": round(sent / (time.monotonic() - started), 1)}


def wait_until_applied(producer, topic: str, db, timeout: float = 300) -> float:
    """Send a view for a shopper of its own until the job has written it (the query starts at the end of
    the topic once its JVM is up); returns the seconds it took."""
    from recsys_io.mongo import RECOMMENDATIONS

    started, user = time.monotonic(), f"warm-{uuid.uuid4().hex[:6]}"
    while time.monotonic() - started < timeout:
        producer.send(topic, key=user, value=view(user, PRODUCTS[0]))
        producer.flush()
        for _ in range(20):
            if db[RECOMMENDATIONS].find_one({"_id": user}, {"_id": 1}):
                return round(time.monotonic() - started, 1)
            time.sleep(0.5)
    raise SystemExit(f"the stream applied nothing within {timeout:.0f} s")


# --- part 1: CPU on executors ------------------------------------------------------------------
def part_cpu(args, env, run_dir: Path) -> dict:
    from recsys_io.kafka import make_producer
    from recsys_io.mongo import mongo_client

    settings = cluster_of(env, 2)
    db_name = "bench_scale_cpu"
    job_env = part_env(env, run_dir / "cpu", db_name, RECSYS_STREAM_STARTING_OFFSETS="latest")
    client = mongo_client(settings)
    db, users = seed_store(client, db_name, args.shoppers, HISTORY_MAX_ITEMS)
    seed_model_apart_in(job_env, db_name, run_dir / "cpu" / "models", users)
    producer, topic = make_producer(settings), settings.topics.events
    job = start("stream", [str(RECSYS), "stream"], job_env, run_dir / "cpu")
    try:
        say("waiting for the stream job to apply a first view ...")
        ready = wait_until_applied(producer, topic, db)
        say(f"applied after {ready} s; warm-up {args.rate} events/s for {args.warmup:.0f} s, not measured ...")
        produce_at_rate(producer, topic, args.rate, args.warmup, users)
        job_pid, workers = job.pid(), worker_pids(settings)
        groups = ProcessGroups(lambda table: {"driver": {job_pid}, "executors": executor_roots(table, workers)})
        groups.start()
        say(f"measuring: {args.rate} events/s for {args.seconds:.0f} s over {args.shoppers:,} shoppers ...")
        window = datetime.now()
        load = produce_at_rate(producer, topic, args.rate, args.seconds, users)
        cpu = groups.finish()
        applied = batches_logged(job.log_file, since=window)
    finally:
        job.stop(60)
        producer.close()
        client.drop_database(db_name)
        client.close()
    total = cpu["driver"]["cpu_seconds"] + cpu["executors"]["cpu_seconds"]
    share = cpu["executors"]["cpu_seconds"] / total if total else None
    result = {
        "shoppers": args.shoppers,
        "seeded_history_views": HISTORY_MAX_ITEMS,
        "spark_workers": 2,
        "warmup_seconds": args.warmup,
        "seconds": args.seconds,
        "load": load,
        # Whether the job kept up: what its batches that ended in the window applied.
        "applied_in_window": {
            "batches": len(applied),
            "events": sum(b[1] for b in applied),
            "shoppers": sum(b[3] for b in applied),
        },
        "processes": cpu,
        "baseline_driver_cpu_seconds": cpu["driver"]["cpu_seconds"],
        "executor_share": round(share, 3) if share is not None else None,
        "goal_executor_share": 0.8,
    }
    say(f"cpu: {json.dumps(result)}")
    return result


def seed_model_apart_in(job_env: dict[str, str], db_name: str, models_dir: Path, users: list[str]) -> None:
    """freshness.seed_model_apart with the part's variables (the child reads its settings from the environment)."""
    saved = dict(os.environ)
    os.environ.update(job_env)
    try:
        seed_model_apart(db_name, models_dir, users)
    finally:
        os.environ.clear()
        os.environ.update(saved)


# --- part 2: driver memory during a model refresh ------------------------------------------------
def run_sampled(label: str, command: list[str], env: dict[str, str], log: Path, executors: set[int]) -> dict:
    """Run a `recsys` command to its end, sampling its process tree (the driver) and the executors."""
    log.parent.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    with log.open("ab") as out:
        process = subprocess.Popen(command, env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
        groups = ProcessGroups(lambda table: {"driver": {process.pid}, "executors": executor_roots(table, executors)})
        groups.start()
        code = process.wait()
    sampled = groups.finish()
    if code != 0:
        raise SystemExit(f"{label} failed (exit {code}); see {log}")
    result = {"seconds": round(time.monotonic() - started, 1), **sampled}
    say(f"  {label}: {result['seconds']} s, driver peak RSS {sampled['driver']['peak_rss_mib']} MiB")
    return result


def part_memory(args, env, run_dir: Path) -> dict:
    from recsys_io.kafka import ensure_topics, make_admin
    from recsys_io.mongo import mongo_client

    settings = cluster_of(env, 2)
    config = run_dir / "small-search.json"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(json.dumps(SMALL_SEARCH))
    today = datetime.now(UTC).date()
    first = today - timedelta(days=args.days)
    sizes: dict[str, dict] = {}
    for label, shoppers in (("1x", args.shoppers // 10), ("10x", args.shoppers)):
        db_name, prefix = f"bench_scale_memory_{label}", f"bench-scale-{label}-{uuid.uuid4().hex[:6]}."
        size_env = part_env(env, run_dir / f"memory-{label}", db_name, RECSYS_TOPIC_PREFIX=prefix)
        size_settings = stack_settings(size_env)
        ensure_topics(size_settings)
        log = run_dir / f"memory-{label}" / "commands.log"
        recsys = [str(RECSYS)]
        say(f"memory {label}: simulating {shoppers:,} shoppers over {args.days} days ...")
        step_started = time.monotonic()
        for command in (
            ["simulate", "catalog"],
            ["simulate", "history", "--users", str(shoppers), "--days", str(args.days)],
        ):
            with log.open("ab") as out:
                subprocess.run(
                    recsys + command, env=size_env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, check=True
                )
        simulated = round(time.monotonic() - step_started, 1)
        executors = worker_pids(settings)
        say(f"memory {label}: ingesting the days (raw_events) ...")
        ingest = run_sampled(
            "ingest",
            recsys + ["materialize", "raw_events", "--from", first.isoformat(), "--to", today.isoformat()],
            size_env,
            log,
            executors,
        )
        say(f"memory {label}: full model refresh ...")
        refresh = run_sampled(
            "refresh",
            recsys + ["materialize", *refresh_assets(size_settings), "--config", str(config)],
            size_env,
            log,
            executors,
        )
        sizes[label] = {
            "shoppers": shoppers,
            "days": args.days,
            "raw_events": count_events(size_settings),
            "simulate_seconds": simulated,
            "ingest": ingest,
            "refresh": refresh,
        }
        client = mongo_client(size_settings)
        client.drop_database(db_name)
        client.close()
        admin = make_admin(size_settings)
        admin.delete_topics(list(size_settings.topics.all))
        admin.close()
    baseline = sizes["1x"]["refresh"]["driver"]["peak_rss_mib"]
    result = {
        "search": SMALL_SEARCH["ops"]["als_model"]["config"],
        "spark_workers": 2,
        "sizes": sizes,
        "baseline_1x_driver_peak_rss_mib": baseline,
        "driver_peak_growth": round(sizes["10x"]["refresh"]["driver"]["peak_rss_mib"] / baseline, 2),
        "events_growth": round(sizes["10x"]["raw_events"] / max(1, sizes["1x"]["raw_events"]), 2),
        "goal_driver_peak_growth": 1.2,
    }
    say(f"memory: growth {result['driver_peak_growth']}x while the events grew {result['events_growth']}x")
    return result


def refresh_assets(settings) -> list[str]:
    """Every asset but the daily ingest: what a refresh of the model and serving documents rebuilds."""
    from recsys_assets.definitions import build_assets

    keys = [key.to_user_string() for a in build_assets(settings) for key in a.keys]
    return [k for k in keys if k not in ("raw_events", "quarantined_events")]


def count_events(settings) -> int:
    """Records on the part's events topic: the size of the store it simulated."""
    from recsys_io.kafka import make_consumer

    consumer = make_consumer(settings, group_id=None)
    try:
        from kafka import TopicPartition

        partitions = [
            TopicPartition(settings.topics.events, p) for p in consumer.partitions_for_topic(settings.topics.events)
        ]
        ends, starts = consumer.end_offsets(partitions), consumer.beginning_offsets(partitions)
        return sum(ends[p] - starts[p] for p in partitions)
    finally:
        consumer.close()


# --- part 3: 1 worker against 2 -------------------------------------------------------------------
BATCH_LINE = re.compile(
    r"^(\S+ \S+) INFO recsys.stream: batch (\d+): (\d+) events applied, (\d+) to the DLQ, (\d+) users, "
    r"(\d+) tasks, (\d+) ms",
    re.MULTILINE,
)
WORKERS_PARTITIONS = 4
WORKERS_BATCH = 5000


def part_workers(args, env, run_dir: Path) -> dict:
    from recsys_io.kafka import ensure_topics, make_admin, make_producer
    from recsys_io.mongo import HISTORY, RECOMMENDATIONS, mongo_client

    settings = cluster_of(env, 2)
    db_name, prefix = "bench_scale_workers", f"bench-scale-workers-{uuid.uuid4().hex[:6]}."
    shared = part_env(
        env,
        run_dir / "workers",
        db_name,
        RECSYS_TOPIC_PREFIX=prefix,
        RECSYS_EVENTS_PARTITIONS=str(WORKERS_PARTITIONS),
        RECSYS_STREAM_STARTING_OFFSETS="earliest",
        RECSYS_STREAM_MAX_EVENTS_PER_BATCH=str(WORKERS_BATCH),
    )
    topic_settings = stack_settings(shared)
    ensure_topics(topic_settings)
    client = mongo_client(settings)
    db, users = seed_store(client, db_name, args.shoppers, HISTORY_MAX_ITEMS)
    seed_model_apart_in(shared, db_name, run_dir / "workers" / "models", users)
    backlog = args.backlog or 2 * args.shoppers
    say(f"producing a backlog of {backlog:,} views, one per shopper in turn ...")
    producer = make_producer(topic_settings)
    for i in range(backlog):
        user = users[i % len(users)]
        producer.send(topic_settings.topics.events, key=user, value=view(user, PRODUCTS[i % len(PRODUCTS)]))
    producer.flush()
    producer.close()
    runs = {}
    try:
        for workers in (1, 2):
            cluster_of(env, workers)
            if runs:  # the run before rewrote every shopper's documents
                db[HISTORY].drop()
                db[RECOMMENDATIONS].drop()
                seed_histories(db, users, HISTORY_MAX_ITEMS)
            job_dir = run_dir / "workers" / f"{workers}-workers"
            job_env = {**shared, "RECSYS_SPARK_WORKERS": str(workers), "RECSYS_DATA_DIR": str(job_dir)}
            say(f"{workers} worker(s): draining the backlog with `recsys stream --once` ...")
            runs[f"{workers}_workers"] = drain_once(job_env, job_dir)
            say(f"  {runs[f'{workers}_workers']}")
    finally:
        client.drop_database(db_name)
        client.close()
        admin = make_admin(topic_settings)
        admin.delete_topics(list(topic_settings.topics.all))
        admin.close()
    one, two = runs["1_workers"]["shoppers_per_second"], runs["2_workers"]["shoppers_per_second"]
    result = {
        "shoppers": args.shoppers,
        "backlog_views": backlog,
        "partitions": WORKERS_PARTITIONS,
        "max_events_per_batch": WORKERS_BATCH,
        "measure": "drain a fixed backlog with --once; shoppers written / seconds in batches, first batch left out",
        **runs,
        "baseline_1_worker_shoppers_per_second": one,
        "ratio_2_to_1": round(two / one, 2) if one and two else None,
    }
    say(f"workers: 2 workers / 1 worker = {result['ratio_2_to_1']}")
    return result


def batches_logged(log: Path, since: datetime | None = None) -> list[tuple[int, ...]]:
    """(batch, events, dead letters, shoppers, tasks, ms) of each batch the job logged, ended after `since`."""
    found = []
    for match in BATCH_LINE.finditer(log.read_text(errors="replace")):
        if since is None or datetime.strptime(match[1], "%Y-%m-%d %H:%M:%S,%f") >= since:
            found.append(tuple(int(g) for g in match.groups()[1:]))
    return found


def drain_once(job_env: dict[str, str], job_dir: Path) -> dict:
    log = job_dir / "stream.log"
    job_dir.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    with log.open("ab") as out:
        code = subprocess.run(
            [str(RECSYS), "stream", "--once"], env=job_env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT
        ).returncode
    wall = time.monotonic() - started
    if code != 0:
        raise SystemExit(f"`recsys stream --once` failed (exit {code}); see {log}")
    batches = batches_logged(log)
    timed = batches[1:]
    users, millis = sum(b[3] for b in timed), sum(b[5] for b in timed)
    return {
        "batches": len(batches),
        "events_applied": sum(b[1] for b in batches),
        "first_batch_seconds": round(batches[0][5] / 1000, 1) if batches else None,
        "timed_shoppers": users,
        "timed_batch_seconds": round(millis / 1000, 1),
        "shoppers_per_second": round(users * 1000 / millis) if millis else None,
        "process_seconds": round(wall, 1),
    }


# --- part 4: freshness on the cluster and the engine's floor ------------------------------------------
def part_freshness(args, env, run_dir: Path) -> dict:
    import multiprocessing

    from recsys_io.kafka import make_producer

    settings = cluster_of(env, 2)
    floor_dir = run_dir / "floor"
    floor_env = part_env(env, floor_dir, "bench_scale_floor", RECSYS_STREAM_STARTING_OFFSETS="latest")
    context = multiprocessing.get_context("spawn")
    stop, ready, out = context.Event(), context.Event(), floor_dir / "latencies.json"
    child = context.Process(target=floor_query, args=(floor_env, stop, ready, out))
    say("engine floor: a trivial Kafka -> foreachBatch query on the cluster ...")
    child.start()
    producer, users = make_producer(settings), [f"floor-{i}" for i in range(args.shoppers)]
    try:
        if not ready.wait(300):
            raise SystemExit("the floor query did not start within 300 s")
        produce_at_rate(producer, settings.topics.events, args.freshness_rate, args.warmup, users)
        timed_from = time.time()
        say(f"engine floor: {args.freshness_rate} events/s for {args.seconds:.0f} s ...")
        load = produce_at_rate(producer, settings.topics.events, args.freshness_rate, args.seconds, users)
        time.sleep(5)  # the last views' batch
    finally:
        stop.set()
        child.join(120)
        producer.close()
    arrivals = json.loads(out.read_text()) if out.exists() else []
    latencies = [arrived - sent for sent, arrived in arrivals if sent >= timed_from]
    floor = {
        "load": load,
        "measured_from": "the view's ts (set just before it is sent)",
        "seconds": summary(latencies),
    }
    say(f"engine floor: {floor['seconds']}")
    report = RESULTS / "scale-freshness.json"
    command = [
        sys.executable,
        str(Path(__file__).with_name("freshness.py")),
        "--rate",
        str(args.freshness_rate),
        "--seconds",
        str(args.seconds),
        "--warmup",
        str(args.warmup),
        "--steps",
        "",
        "--users",
        str(args.shoppers),
        "--out",
        str(report),
    ]
    say(f"bench/freshness.py on the cluster: {' '.join(command[2:])}")
    subprocess.run(command, env={**env, "RECSYS_DATA_DIR": str(run_dir / "freshness")}, cwd=ROOT, check=True)
    fresh = json.loads(report.read_text())["steady"]
    p95, floor_p95 = fresh["freshness_seconds"]["p95"], floor["seconds"]["p95"]
    result = {
        "shoppers": args.shoppers,
        "spark_workers": settings.spark_workers,
        "trigger_seconds": settings.stream_trigger_seconds,
        "freshness": fresh,
        "baseline_engine_floor": floor,
        "freshness_p95_seconds": p95,
        "p95_ratio_to_floor": round(p95 / floor_p95, 2) if p95 and floor_p95 else None,
        "goal_p95_seconds": 2.0,
    }
    say(f"freshness: p95 {p95} s against the floor's {floor_p95} s")
    return result


def floor_query(env: dict[str, str], stop, ready, out: Path) -> None:
    """In a child process: the job's Kafka source -> a foreachBatch whose tasks note when each view reaches them."""
    os.environ.update(env)
    from recsys_core.settings import Settings
    from recsys_io.spark import get_spark
    from streaming.job import start_query

    settings = Settings.from_env()
    spark = get_spark(settings, "recsys-bench-floor", min_executors=1)
    spark.sparkContext.setLogLevel("ERROR")
    arrivals: list[tuple[float, float]] = []

    def arrival_times(records):
        import json as json_
        import time as time_
        from datetime import datetime as datetime_

        for record in records:
            arrived = time_.time()
            ts = json_.loads(record.value)["ts"]
            yield datetime_.fromisoformat(ts.replace("Z", "+00:00")).timestamp(), arrived

    def each_batch(frame, batch_id):
        arrivals.extend(frame.rdd.mapPartitions(arrival_times).collect())
        ready.set()

    # The job's own source, trigger and checkpointing: only what the batch function does differs.
    query = start_query(spark, settings, each_batch)
    while not stop.wait(1):
        if not ready.is_set() and query.lastProgress:
            ready.set()  # batches run (empty ones too): the query reads the topic from here on
    query.stop()
    out.write_text(json.dumps(arrivals))
    spark.stop()


def summary(values: list[float]) -> dict:
    return {
        "count": len(values),
        **{f"p{q}": round(percentile(values, q / 100), 3) if values else None for q in (50, 95, 99)},
    }


# --- main ----------------------------------------------------------------------------------------
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--part", default=",".join(PARTS), help=f"Parts to run, comma-separated ({', '.join(PARTS)}).")
    parser.add_argument("--shoppers", type=int, default=20_000, help="Shoppers (memory: the 10x size; 1x is a tenth).")
    parser.add_argument("--seconds", type=float, default=60, help="Length of each timed window.")
    parser.add_argument("--warmup", type=float, default=30, help="Untimed seconds at the rate before a window.")
    parser.add_argument("--rate", type=int, default=1000, help="cpu: product views per second.")
    parser.add_argument("--freshness-rate", type=int, default=500, help="freshness: product views per second.")
    parser.add_argument("--days", type=int, default=30, help="memory: days of simulated history at both sizes.")
    parser.add_argument("--backlog", type=int, default=0, help="workers: views in the backlog (default 2 x shoppers).")
    parser.add_argument("--workers", type=int, default=2, help="Spark workers (1 core each) the stack starts with.")
    parser.add_argument(
        "--port-base", type=int, default=20400, help="First of the stack's ports (unless RECSYS_*_PORT)."
    )
    parser.add_argument("--data-dir", type=Path, default=ROOT / ".recsys-bench-scale", help="The stack's data.")
    parser.add_argument("--keep-stack", action="store_true", help="Leave the scratch stack running at the end.")
    args = parser.parse_args()
    parts = [p for p in args.part.split(",") if p]
    unknown = set(parts) - set(PARTS)
    if unknown:
        parser.error(f"unknown part(s) {', '.join(sorted(unknown))}; choose from {', '.join(PARTS)}")

    from recsys_core.settings import Settings
    from recsys_stack import manager

    env = stack_env(args)
    run_dir = args.data_dir.resolve() / "runs" / f"scale-{int(time.time())}"
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / "scale.json"
    try:
        for part in parts:
            say(f"== part {part}")
            started, at_start = time.monotonic(), machine()
            try:
                measured = globals()[f"part_{part}"](args, env, run_dir)
            except (Exception, SystemExit) as error:  # noqa: BLE001 - the other parts still run
                say(f"part {part} failed: {error}")
                measured = {"error": str(error)}
            # Read again: another part's run may have written meanwhile, and only this part is replaced.
            results = json.loads(path.read_text()) if path.exists() else {"name": "scale"}
            results[part] = {
                "machine": at_start,
                "load_average_1m_at_end": os.getloadavg()[0],
                "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
                "took_seconds": round(time.monotonic() - started),
                **measured,
            }
            path.write_text(json.dumps(results, indent=1, default=str))
    finally:
        if not args.keep_stack:
            say("stopping the scratch stack")
            manager.down(Settings.from_env(env))
    results = json.loads(path.read_text()) if path.exists() else {}
    print(json.dumps({p: results[p] for p in parts if p in results}, indent=1, default=str))
    print(f"written to {path}")


if __name__ == "__main__":
    main()
