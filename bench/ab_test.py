"""Benchmark: how long `make run`'s shop takes to show, in an A/B test, that the model's
recommendations earn more clicks than the shop's bestsellers.

1. Runs `recsys run` (what `make run` starts) on a data dir and ports of its own: the simulated
   store (2,000 shoppers, 500 products, 12 categories by default), --days of history, the asset
   graph materialised once (a small ALS search unless --full-search), then the API, the streaming
   job and live traffic at `make run`'s default rate (20 events/s), half of whose visits open on the
   shopper's recommendations and click by the shopper's hidden tastes.
2. Defines the experiment `model-vs-bestsellers` on the recommendations surface through the API:
   variant `bestsellers` (the shop's bestsellers, the baseline) and `model` (ALS), 50/50.
3. Every 5 s the live traffic reports, per variant, the lists it was served, the products shown and
   its clicks. The benchmark applies the platform's own two-proportion z-test
   (`recsys_core.experiments.two_proportion_test`) to each report and records when the model's CTR
   is first ahead with p < 0.05 and stays so for the rest of the run.

The ratio reported is the model's CTR over the bestsellers' CTR in the same run.

    .venv/bin/python bench/ab_test.py [--minutes 20] [--days 30] [--rate 20] [--full-search]
        [--out bench/results/ab_test.json]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from api import machine  # bench/ is on the path when a benchmark runs as a script: one description of the machine

from recsys_core.experiments import SIGNIFICANCE, two_proportion_test

RESULTS = Path(__file__).resolve().parent / "results"
RECSYS = Path(sys.executable).with_name("recsys")
EXPERIMENT = "model-vs-bestsellers"
BASELINE, CANDIDATE = "shop-bestsellers", "als-model"
SMALL_SEARCH = {"ops": {"als_model": {"config": {"search_reg_params": [0.1], "search_alphas": [10.0], "max_iter": 10}}}}
ARM = re.compile(r"(?P<arm>[\w.-]+) (?P<lists>[\d,]+) lists, (?P<shown>[\d,]+) shown, (?P<clicks>[\d,]+) clicks")


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    for sock in sockets:
        sock.bind(("127.0.0.1", 0))
    ports = [sock.getsockname()[1] for sock in sockets]
    for sock in sockets:
        sock.close()
    return ports


def number(text: str) -> int:
    return int(text.replace(",", ""))


def start_platform(args: argparse.Namespace, data_dir: Path, env: dict[str, str]) -> tuple[subprocess.Popen, str]:
    """`recsys run` until it says it is running; its API key (from what it printed)."""
    config = data_dir.parent / "search.json"
    config.write_text(json.dumps({} if args.full_search else SMALL_SEARCH))
    proc = subprocess.Popen(
        [
            str(RECSYS),
            "run",
            "--days",
            str(args.days),
            "--live-rate",
            str(args.rate),
            "--materialize-config",
            str(config),
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    assert proc.stdout is not None
    for line in proc.stdout:
        print("  " + line.rstrip(), file=sys.stderr, flush=True)
        if line.startswith("recsys is running"):
            break
    else:
        raise SystemExit(f"recsys run stopped before it was running (exit {proc.wait()})")
    for line in proc.stdout:
        if key := re.search(r"API key\s+(\S+)", line):
            return proc, key.group(1)
    raise SystemExit("recsys run printed no API key")


def define_experiment(api: str, key: str) -> None:
    body = {
        "surface": "recommendations",
        "variants": [
            {"name": BASELINE, "share": 0.5, "strategy": "bestsellers"},
            {"name": CANDIDATE, "share": 0.5, "strategy": "model"},
        ],
    }
    request = urllib.request.Request(
        f"{api}/v1/experiments/{EXPERIMENT}",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "X-API-Key": key},
        method="PUT",
    )
    urllib.request.urlopen(request, timeout=10).close()


def reports(log: Path, since: int) -> list[dict[str, dict[str, int]]]:
    """The live traffic's per-variant reports written after byte `since` of its log."""
    if not log.exists():
        return []
    with log.open(encoding="utf-8", errors="replace") as text:
        text.seek(since)
        found = []
        for line in text:
            if "served:" in line:
                arms = {m["arm"]: {k: number(m[k]) for k in ("lists", "shown", "clicks")} for m in ARM.finditer(line)}
                found.append(arms)
        return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=20.0, help="How long the experiment runs.")
    parser.add_argument("--days", type=int, default=30, help="Days of simulated history.")
    parser.add_argument("--rate", type=float, default=20.0, help="Live events per second (make run's default).")
    parser.add_argument("--full-search", action="store_true", help="The model's full hyper-parameter search.")
    parser.add_argument("--out", type=Path, default=RESULTS / "ab_test.json")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="recsys-ab-"))
    data_dir = work / "platform"
    kafka, controller, mongo, api_port, dagster = free_ports(5)
    env = {
        **os.environ,
        "RECSYS_DATA_DIR": str(data_dir),
        "RECSYS_KAFKA_PORT": str(kafka),
        "RECSYS_KAFKA_CONTROLLER_PORT": str(controller),
        "RECSYS_MONGO_PORT": str(mongo),
        "RECSYS_API_PORT": str(api_port),
        "RECSYS_DAGSTER_PORT": str(dagster),
        "RECSYS_SPARK_WORKERS": "0",
    }
    host = machine()
    started = time.monotonic()
    proc, key = start_platform(args, data_dir, env)
    up_seconds = time.monotonic() - started
    try:
        api = f"http://127.0.0.1:{api_port}"
        log = data_dir / "logs" / "live-traffic.log"
        since = log.stat().st_size if log.exists() else 0
        define_experiment(api, key)
        defined = time.monotonic()
        timeline: list[dict[str, float]] = []
        first_significant: float | None = None
        while time.monotonic() - defined < args.minutes * 60:
            time.sleep(30)
            # The traffic's counts are cumulative since it started; the experiment's since it was defined.
            seen = reports(log, since)
            if not seen:
                continue
            last = seen[-1]
            base, cand = last.get(BASELINE), last.get(CANDIDATE)
            if not base or not cand:
                continue
            test = two_proportion_test(base["clicks"], base["shown"], cand["clicks"], cand["shown"])
            if test is None:
                continue
            minute = (time.monotonic() - defined) / 60
            ahead = test.difference > 0 and test.p_value < SIGNIFICANCE
            if ahead and first_significant is None:
                first_significant = minute
            elif not ahead:
                first_significant = None  # must hold to the end of the run
            point = {
                "minute": round(minute, 1),
                "bestsellers_ctr": base["clicks"] / base["shown"],
                "model_ctr": cand["clicks"] / cand["shown"],
                "bestsellers_lists": base["lists"],
                "model_lists": cand["lists"],
                "p_value": test.p_value,
            }
            timeline.append(point)
            print(
                f"  {minute:5.1f} min  bestsellers ctr {100 * point['bestsellers_ctr']:.2f} % ({base['lists']:,} lists)"
                f"  model ctr {100 * point['model_ctr']:.2f} % ({cand['lists']:,} lists)  p {test.p_value:.2g}",
                file=sys.stderr,
                flush=True,
            )
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        proc.wait(timeout=300)
    if not timeline:
        raise SystemExit("the live traffic reported no served list of both variants: see " + str(log))
    final = timeline[-1]
    result = {
        "machine": host,
        "rate_events_per_s": args.rate,
        "days": args.days,
        "platform_up_seconds": round(up_seconds),
        "minutes": args.minutes,
        "bestsellers_ctr": final["bestsellers_ctr"],
        "model_ctr": final["model_ctr"],
        "ratio_model_over_bestsellers": final["model_ctr"] / final["bestsellers_ctr"]
        if final["bestsellers_ctr"]
        else None,
        "p_value": final["p_value"],
        "minutes_to_significance": first_significant,
        "timeline": timeline,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print(json.dumps({k: v for k, v in result.items() if k != "timeline"}, indent=2))


if __name__ == "__main__":
    main()
