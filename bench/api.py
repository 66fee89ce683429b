"""Benchmark: the API's GET recommendations against a minimal Litestar ceiling, and POST /v1/events.

1. Seeds 100,000 shoppers' recommendation documents (and their histories) into a database of its
   own (`bench_api`, dropped at the end) with bulk inserts.
2. Serves the real API (`recsys_api.main:app_from_env`) and, for the ceiling, a minimal Litestar app whose
   one handler reads one recommendations document by id and returns it — each with uvicorn in a
   subprocess, side by side, on the same Mongo.
3. A separate load process sends closed-loop GET /v1/users/<random user>/recommendations over a
   few keep-alive connections (a small asyncio HTTP/1.1 client: httpx would cost more CPU than the
   server on 2 cores), alternating between ceiling and API in short rounds, and reports
   requests/s, p50, p99 over all rounds; then the same at half of each one's rate, open-loop
   (latency counted from when a request was due, so a stall is not hidden).
4. POST /v1/events with batches of 100 events, closed-loop: events/s acknowledged by Kafka.

Needs a running stack (`recsys stack up`); it writes events to that stack's recsys.events, so
point it at a scratch stack (e.g. RECSYS_DATA_DIR and ports of a test slot), not at production.

    .venv/bin/python bench/api.py [--users 100000] [--seconds 10] [--connections 8]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
ROOT = Path(__file__).resolve().parents[1]
DB_NAME = "bench_api"


def machine() -> dict:
    memory_kib = next(
        (
            int(line.split()[1])
            for line in Path("/proc/meminfo").read_text().splitlines()
            if line.startswith("MemTotal:")
        ),
        0,
    )
    return {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "memory_gib": round(memory_kib / 1024**2, 1),
        "load_average_1m_at_start": os.getloadavg()[0],
    }


# --- seeding ---------------------------------------------------------------------------------------
def seed(settings, users: int) -> None:
    from recsys_io.mongo import HISTORY, RECOMMENDATIONS, mongo_client

    client = mongo_client(settings)
    db = client[DB_NAME]
    client.drop_database(DB_NAME)
    now = datetime.now(UTC)
    rng = random.Random(7)
    started = time.perf_counter()
    for start in range(0, users, 10_000):
        ids = range(start, min(start + 10_000, users))
        db[RECOMMENDATIONS].insert_many(
            [
                {
                    "_id": f"u{i}",
                    "user_id": f"u{i}",
                    "strategy": "als",
                    "model_version": "bench",
                    "computed_at": now,
                    "last_event_ts": now,
                    "items": [{"product_id": f"p{rng.randrange(5000)}", "score": 1 - k / 20} for k in range(20)],
                }
                for i in ids
            ],
            ordered=False,
        )
        db[HISTORY].insert_many(
            [
                {
                    "_id": f"u{i}",
                    "user_id": f"u{i}",
                    "items": [],
                    "deleted": {},
                    "updated_at": now,
                    "purchased": [f"p{rng.randrange(5000)}" for _ in range(3)],
                }
                for i in ids
            ],
            ordered=False,
        )
        print(f"  seeded {min(start + 10_000, users):,}/{users:,} users", file=sys.stderr, flush=True)
    print(f"  seeding took {time.perf_counter() - started:.1f}s", file=sys.stderr)
    client.close()


# --- the ceiling: the least a Litestar handler can do for this request -----------------------------
def ceiling_app():
    from litestar import Litestar, get

    from recsys_core.settings import Settings
    from recsys_io.mongo import RECOMMENDATIONS, async_mongo_client

    client = async_mongo_client(Settings.from_env())
    collection = client[DB_NAME][RECOMMENDATIONS]

    @get("/v1/users/{user_id:str}/recommendations")
    async def one_document(user_id: str) -> dict:
        return await collection.find_one({"_id": user_id}, {"_id": 0, "last_event_ts": 0}) or {}

    return Litestar([one_document])


# --- servers ---------------------------------------------------------------------------------------
def serve(target: str, port: int, env: dict[str, str]) -> subprocess.Popen:
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        target,
        "--factory",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--log-level",
        "warning",
        "--no-access-log",
    ]
    process = subprocess.Popen(command, env=env, cwd=ROOT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            asyncio.run(
                _request_once("127.0.0.1", port, b"GET /v1/users/u0/recommendations HTTP/1.1\r\nHost: bench\r\n\r\n")
            )
            return process
        except OSError:
            time.sleep(0.3)
    process.kill()
    raise SystemExit(f"{target} did not start on port {port}")


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(15)
    except subprocess.TimeoutExpired:
        process.kill()


# --- load: a minimal HTTP/1.1 keep-alive client ----------------------------------------------------
async def _read_response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n"):
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
    if length:
        await reader.readexactly(length)
    return status


async def _request_once(host: str, port: int, request: bytes) -> int:
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(request)
    status = await _read_response(reader)
    writer.close()
    return status


def get_request(user: str) -> bytes:
    return f"GET /v1/users/{user}/recommendations HTTP/1.1\r\nHost: bench\r\n\r\n".encode()


def post_request(body: bytes) -> bytes:
    return (
        b"POST /v1/events HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n"
        b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
    )


async def closed_loop(port: int, make_request, connections: int, seconds: float) -> dict:
    latencies: list[float] = []
    failures = 0
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal failures
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            writer.write(make_request())
            if await _read_response(reader) >= 300:
                failures += 1
            latencies.append(time.perf_counter() - started)
        writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(connections)))
    return raw(latencies, time.perf_counter() - started, failures)


async def open_loop(port: int, make_request, rate: float, connections: int, seconds: float) -> dict:
    """Requests due every 1/rate s, spread over a pool of connections; latency from the due time."""
    latencies: list[float] = []
    failures = 0
    total = int(rate * seconds)
    start = time.perf_counter() + 0.2
    next_index = 0

    async def worker() -> None:
        nonlocal failures, next_index
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        while next_index < total:
            index, next_index = next_index, next_index + 1
            due = start + index / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            writer.write(make_request())
            if await _read_response(reader) >= 300:
                failures += 1
            latencies.append(time.perf_counter() - due)
        writer.close()

    await asyncio.gather(*(worker() for _ in range(connections)))
    return raw(latencies, time.perf_counter() - start, failures)


def raw(latencies: list[float], elapsed: float, failures: int) -> dict:
    return {"latencies": latencies, "elapsed": elapsed, "failures": failures}


def summary(runs: list[dict]) -> dict:
    """One figure over several runs of a scenario: requests/s over their total time, pooled percentiles."""
    ordered = sorted(latency for run in runs for latency in run["latencies"])
    elapsed = sum(run["elapsed"] for run in runs)
    return {
        "requests": len(ordered),
        "failures": sum(run["failures"] for run in runs),
        "requests_per_s": round(len(ordered) / elapsed, 1),
        "p50_ms": round(ordered[len(ordered) // 2] * 1000, 2) if ordered else None,
        "p99_ms": round(ordered[int(len(ordered) * 0.99)] * 1000, 2) if ordered else None,
        "mean_ms": round(statistics.fmean(ordered) * 1000, 2) if ordered else None,
    }


def load(args: argparse.Namespace) -> None:
    """The load process: runs one scenario, prints its summary as JSON on stdout."""
    gc.disable()  # the load generator's own collector pauses would count as server latency
    rng = random.Random()
    users = args.users
    if args.scenario == "get":
        result = asyncio.run(
            closed_loop(args.port, lambda: get_request(f"u{rng.randrange(users)}"), args.connections, args.seconds)
        )
    elif args.scenario == "get-rate":
        result = asyncio.run(
            open_loop(
                args.port, lambda: get_request(f"u{rng.randrange(users)}"), args.rate, args.connections, args.seconds
            )
        )
    else:
        # Bodies built up front so the load process spends its CPU on sending, not on JSON;
        # no event_id: the API generates one per event.
        bodies = [
            post_request(
                json.dumps(
                    {
                        "events": [
                            {"type": "product_view", "user_id": f"bench-{rng.randrange(users)}", "product_id": f"p{i}"}
                            for i in range(100)
                        ]
                    }
                ).encode()
            )
            for _ in range(64)
        ]
        result = asyncio.run(closed_loop(args.port, lambda: rng.choice(bodies), args.connections, args.seconds))
    print(json.dumps(result))


def run_load(scenario: str, port: int, args: argparse.Namespace, connections: int, rate: float = 0) -> dict:
    output = subprocess.run(
        [
            sys.executable,
            __file__,
            "--load",
            scenario,
            "--port",
            str(port),
            "--users",
            str(args.users),
            "--seconds",
            str(args.seconds),
            "--connections",
            str(connections),
            "--rate",
            str(rate),
        ],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    return json.loads(output.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=100_000, help="Recommendation documents to seed.")
    parser.add_argument("--seconds", type=float, default=5, help="Length of each load phase in a round.")
    parser.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="Rounds alternating ceiling and API (each scenario runs rounds x seconds).",
    )
    parser.add_argument("--connections", type=int, default=8, help="Concurrent keep-alive connections (GET).")
    parser.add_argument(
        "--post-connections",
        type=int,
        default=16,
        help="Concurrent connections for POST /v1/events (each waits for Kafka's acks).",
    )
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--load", choices=["get", "get-rate", "post"], dest="scenario", help=argparse.SUPPRESS)
    parser.add_argument("--rate", type=float, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.scenario:
        load(args)
        return

    from recsys_core.settings import Settings
    from recsys_io.kafka import ensure_topics
    from recsys_io.mongo import require_mongo

    settings = Settings.from_env()
    require_mongo(settings)
    ensure_topics(settings)
    info = machine()
    print(f"machine: {info}", file=sys.stderr)
    seed(settings, args.users)
    env = {**os.environ, "RECSYS_MONGO_DB": DB_NAME, "PYTHONPATH": str(ROOT)}
    env.pop("RECSYS_API_KEYS", None)
    port = settings.api_port
    results: dict = {
        "machine": info,
        "users": args.users,
        "seconds_per_phase": args.seconds,
        "rounds": args.rounds,
        "connections": args.connections,
        "post_connections": args.post_connections,
    }
    servers = {"ceiling": ("bench.api:ceiling_app", port + 1), "api": ("recsys_api.main:app_from_env", port)}
    processes = []
    try:
        # Both servers run side by side (an idle one costs nothing) and the load alternates
        # between them in short rounds, so a slow spell of this shared machine hits both alike.
        for target, target_port in servers.values():
            processes.append(serve(target, target_port, env))
            run_load("get", target_port, args, args.connections)  # warm-up: connections, caches
        runs: dict[str, list[dict]] = {name: [] for name in servers}
        for round_ in range(args.rounds):
            order = list(servers) if round_ % 2 == 0 else list(reversed(servers))
            for name in order:
                print(
                    f"round {round_ + 1}/{args.rounds}: {name}, closed loop, {args.connections} connections, "
                    f"{args.seconds:.0f}s ...",
                    file=sys.stderr,
                )
                runs[name].append(run_load("get", servers[name][1], args, args.connections))
        for name in servers:
            results[name] = summary(runs[name])
            results[name]["rounds_requests_per_s"] = [round(len(r["latencies"]) / r["elapsed"], 1) for r in runs[name]]
        half_runs: dict[str, list[dict]] = {name: [] for name in servers}
        for round_ in range(args.rounds):
            order = list(servers) if round_ % 2 == 0 else list(reversed(servers))
            for name in order:
                half = results[name]["requests_per_s"] / 2
                print(f"round {round_ + 1}/{args.rounds}: {name}, open loop at {half:.0f} req/s ...", file=sys.stderr)
                half_runs[name].append(run_load("get-rate", servers[name][1], args, args.connections, half))
        for name in servers:
            results[f"{name}_at_half_rate"] = summary(half_runs[name])
            results[f"{name}_at_half_rate"]["rounds_p99_ms"] = [
                round(sorted(r["latencies"])[int(len(r["latencies"]) * 0.99)] * 1000, 2) for r in half_runs[name]
            ]
        print("api: POST /v1/events, batches of 100 ...", file=sys.stderr)
        results["post_events"] = summary([run_load("post", port, args, args.post_connections)])
        results["post_events"]["events_per_s"] = round(results["post_events"]["requests_per_s"] * 100, 1)
    finally:
        for process in processes:
            stop(process)
        from recsys_io.mongo import mongo_client

        client = mongo_client(settings)
        client.drop_database(DB_NAME)
        client.close()

    results["ratio_to_ceiling"] = round(results["api"]["requests_per_s"] / results["ceiling"]["requests_per_s"], 3)
    results["rounds_ratio_to_ceiling"] = [
        round(a / c, 3)
        for a, c in zip(results["api"]["rounds_requests_per_s"], results["ceiling"]["rounds_requests_per_s"])
    ]
    results["targets"] = {
        "ratio_at_least_0.8": results["ratio_to_ceiling"] >= 0.8,
        "p99_under_10ms_at_half_rate": results["api_at_half_rate"]["p99_ms"] < 10,
        "events_per_s_at_least_20000": results["post_events"]["events_per_s"] >= 20_000,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "api.json").write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
