"""Benchmark: FerretDB on SQLite against FerretDB on PostgreSQL, with the API and freshness benchmarks.

For each backend in turn, alternating (SQLite, PostgreSQL, SQLite, PostgreSQL with --rounds 2) so
that a busy spell of this shared machine shows as a spread between a backend's rounds rather than
as a difference between backends, it brings the stack up with RECSYS_FERRETDB_BACKEND set, runs
bench/api.py and bench/freshness.py (its steady rate only, no steps), keeps their figures and
brings the stack down. Kafka, the store and the data dir are the same for both; only where FerretDB
keeps its documents changes.

Needs what the two benchmarks need (a scratch data dir and ports, e.g. a test slot's variables) and
starts and stops that stack itself. Writes bench/results/store_backends.json.

    .venv/bin/python bench/store_backends.py [--rounds 2] [--api-args "--rounds 3"]
        [--freshness-args "--rate 500 --seconds 60"]
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

from api import machine  # bench/ is on the path when a benchmark runs as a script

BENCH = Path(__file__).resolve().parent
RESULTS = BENCH / "results"
BACKENDS = ("sqlite", "postgresql")


def run(argv: list[str], env: dict[str, str]) -> None:
    print(f"$ {' '.join(argv)}", file=sys.stderr, flush=True)
    subprocess.run(argv, env=env, cwd=BENCH.parent, check=True)


def figures(api: dict, freshness: dict) -> dict:
    steady = freshness.get("steady", {})
    latency = steady.get("freshness_seconds", {})
    return {
        "api_ratio": api["ratio_to_ceiling"],
        "api_requests_per_s": api["api"]["requests_per_s"],
        "ceiling_requests_per_s": api["ceiling"]["requests_per_s"],
        "api_p99_ms_at_half_rate": api["api_at_half_rate"]["p99_ms"],
        "post_events_per_s": api["post_events"]["events_per_s"],
        "freshness_rate": steady.get("target_rate"),
        "freshness_p50_s": latency.get("p50"),
        "freshness_p95_s": latency.get("p95"),
        "sustained": steady.get("sustained"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=2, help="Runs of each backend, alternating.")
    parser.add_argument("--api-args", default="", help="Options passed to bench/api.py.")
    parser.add_argument("--freshness-args", default="", help="Options passed to bench/freshness.py (not --steps).")
    args = parser.parse_args()

    recsys = [sys.executable, "-m", "recsys_cli.main"]
    result: dict = {
        "name": "store_backends",
        "machine": machine(),
        "api_args": args.api_args,
        "freshness_args": args.freshness_args,
        "runs": [],
    }
    for round_ in range(args.rounds):
        for backend in BACKENDS:
            print(f"== round {round_ + 1}/{args.rounds}: FerretDB on {backend}", file=sys.stderr, flush=True)
            env = {**os.environ, "RECSYS_FERRETDB_BACKEND": backend}
            run([*recsys, "stack", "up"], env)
            try:
                run([sys.executable, str(BENCH / "api.py"), *shlex.split(args.api_args)], env)
                api = json.loads((RESULTS / "api.json").read_text())
                run(
                    [sys.executable, str(BENCH / "freshness.py"), "--steps", "", *shlex.split(args.freshness_args)], env
                )
                freshness = json.loads((RESULTS / "freshness.json").read_text())
            finally:
                run([*recsys, "stack", "down"], env)
            result["runs"].append(
                {"backend": backend, "round": round_ + 1, **figures(api, freshness), "api": api, "freshness": freshness}
            )
            RESULTS.joinpath("store_backends.json").write_text(json.dumps(result, indent=1, default=str))
    columns = (
        "backend",
        "round",
        "api_ratio",
        "api_requests_per_s",
        "ceiling_requests_per_s",
        "api_p99_ms_at_half_rate",
        "freshness_p50_s",
        "freshness_p95_s",
        "sustained",
    )
    print("\t".join(columns))
    for row in result["runs"]:
        print("\t".join(str(row[c]) for c in columns))
    print(f"written to {RESULTS / 'store_backends.json'}")


if __name__ == "__main__":
    main()
