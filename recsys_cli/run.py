"""`recsys run`: the whole platform on a simulated store — what `make run` starts.

1. the local stack (provisioned once);
2. a simulated catalog and N days of shoppers' history, loaded once per data dir;
3. the events topic landed in the lake (`recsys sink --once`) and the asset graph materialised once (raw events, bestsellers, the ALS model with its checks,
   serving documents), again only when no model has been promoted yet;
4. supervised together until Ctrl-C: the Dagster webserver and daemon, the streaming job, the sink, the API
   and live simulated traffic.
A second run finds the stack, the data and the model in place and is up in well under a minute.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated

import typer

from recsys_cli.common import friendly_errors, settings
from recsys_cli.supervisor import Child, Supervisor
from recsys_core.settings import Settings
from recsys_simulator import StoreConfig, build_store, feed
from recsys_stack import manager
from recsys_stack.processes import ManagedProcess

DAGSTER_YAML = Path(__file__).resolve().parents[1] / "dagster.yaml"
RECSYS = [sys.executable, "-m", "recsys_cli.main"]


def say(text: str) -> None:
    typer.secho(text, err=True, fg=typer.colors.CYAN)


def api_key(s: Settings) -> str:
    """The key write routes require: RECSYS_API_KEYS when set, else one generated once and kept."""
    return _kept_key(s.api_keys, s.data_dir / "run" / "api_key")


def read_key(s: Settings) -> str:
    """The key a shopper's data needs: RECSYS_API_READ_KEYS when set, else one generated once and kept."""
    return _kept_key(s.api_read_keys, s.data_dir / "run" / "read_key")


def _kept_key(configured: tuple[str, ...], path: Path) -> str:
    if configured:
        return configured[0]
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(18))
        path.chmod(0o600)
    return path.read_text().strip()


def seed_store(s: Settings, config: StoreConfig, days: int) -> None:
    """Load the simulated catalog and history once per data dir (and per store shape)."""
    marker = s.data_dir / "run" / "seeded.json"
    wanted = {
        "seed": config.seed,
        "users": config.users,
        "products": config.products,
        "categories": config.categories,
        "days": days,
    }
    if marker.exists() and json.loads(marker.read_text()) == wanted:
        say(f"Simulated store already loaded ({config.products} products, {config.users} shoppers, {days} days)")
        return
    store = build_store(config)
    say(f"Loading the simulated catalog: {config.products} products in {config.categories} categories")
    feed.load_catalog(s, store)
    say(f"Sending {days} days of history for {config.users} shoppers to Kafka")
    last = [0.0]

    def progress(tally) -> None:
        if time.monotonic() - last[0] > 3:
            last[0] = time.monotonic()
            say(f"  {tally.events:,} events, up to {tally.last_ts}, {tally.rate:,.0f} events/s")

    tally = feed.send_history(s, store, days, progress=progress)
    say(f"  {tally.events:,} events sent")
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text(json.dumps(wanted))


def materialize_once(s: Settings, days: int, force: bool, config: Path | None) -> None:
    """Backfill the simulated days and build the model and serving documents, once per data dir."""
    marker = s.data_dir / "run" / "materialized"
    if marker.exists() and not force:
        say(
            "The asset graph was materialised before: skipping the initial materialisation "
            "(schedules and sensors keep it current; `recsys materialize` runs it by hand)"
        )
        return
    today = datetime.now(UTC).date()
    first = today - timedelta(days=days)
    say("Landing the events topic in the lake (recsys sink --once)")
    landed = subprocess.run(RECSYS + ["sink", "--once"], stdin=subprocess.DEVNULL)
    if landed.returncode != 0:
        typer.secho(
            f"warning: landing the events did not finish (exit {landed.returncode})", fg=typer.colors.YELLOW, err=True
        )
    say(f"Materialising the asset graph for {first} .. {today} (Spark; a few minutes on 2 cores)")
    extra = ["--config", str(config)] if config else []
    result = subprocess.run(
        RECSYS + ["materialize", "--from", first.isoformat(), "--to", today.isoformat(), *extra],
        stdin=subprocess.DEVNULL,
        env={**os.environ, "DAGSTER_HOME": str(dagster_home(s))},
    )
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text(datetime.now(UTC).isoformat())
    if result.returncode != 0:
        typer.secho(
            f"warning: the initial materialisation did not finish cleanly (exit {result.returncode}); "
            "its runs and checks are in the Dagster UI. The platform starts anyway: without a "
            "promoted model, lists fall back to bestsellers and similar products.",
            fg=typer.colors.YELLOW,
            err=True,
        )


def dagster_home(s: Settings) -> Path:
    home = s.data_dir / "dagster"
    home.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(DAGSTER_YAML, home / "dagster.yaml")
    return home


def platform_children(s: Settings, key: str, read: str, config: StoreConfig, live_rate: float) -> list[Child]:
    env = {
        "DAGSTER_HOME": str(dagster_home(s)),
        "RECSYS_API_KEYS": ",".join(s.api_keys or (key,)),
        "RECSYS_API_READ_KEYS": ",".join(s.api_read_keys or (read,)),
    }
    bin_dir = Path(sys.executable).parent

    def child(name: str, argv: list[str], ready_url: str | None = None) -> Child:
        # Logs in RECSYS_DATA_DIR/logs; the whole process group stops with it.
        return Child(ManagedProcess(name, s.data_dir, whole_group=True), argv, env, ready_url)

    children = [
        child(
            "dagster-webserver",
            [
                str(bin_dir / "dagster-webserver"),
                "-h",
                "127.0.0.1",
                "-p",
                str(s.dagster_port),
                "-m",
                "recsys_assets.definitions",
            ],
            f"http://127.0.0.1:{s.dagster_port}/server_info",
        ),
        child("dagster-daemon", [str(bin_dir / "dagster-daemon"), "run", "-m", "recsys_assets.definitions"]),
        child("streaming", RECSYS + ["stream"]),
        child("sink", RECSYS + ["sink"]),
        child("api", RECSYS + ["api"], f"http://{s.api_host}:{s.api_port}/health"),
    ]
    if live_rate > 0:
        children.append(
            child(
                "live-traffic",
                RECSYS
                + [
                    "simulate",
                    "live",
                    "--rate",
                    str(live_rate),
                    "--seed",
                    str(config.seed),
                    "--users",
                    str(config.users),
                    "--products",
                    str(config.products),
                    "--categories",
                    str(config.categories),
                    # Shoppers react to what the API serves them, so the shop's online metrics move.
                    "--react-via",
                    f"http://{s.api_host}:{s.api_port}",
                ],
            )
        )
    return children


def register(app: typer.Typer) -> None:
    @app.command()
    @friendly_errors
    def run(
        days: Annotated[int, typer.Option(help="Days of simulated history loaded on the first run.")] = 60,
        users: Annotated[int, typer.Option(help="Simulated shoppers.")] = 2000,
        products: Annotated[int, typer.Option(help="Simulated products.")] = 500,
        categories: Annotated[int, typer.Option(help="Simulated categories.")] = 12,
        seed: Annotated[int, typer.Option(help="Seed of the simulated store.")] = 42,
        live_rate: Annotated[float, typer.Option(help="Live simulated events per second (0: none).")] = 20.0,
        rematerialize: Annotated[bool, typer.Option(help="Materialise the graph even if a model exists.")] = False,
        materialize_config: Annotated[
            Path | None,
            typer.Option(help="Dagster run config (JSON) for the initial materialisation, e.g. a smaller ALS search."),
        ] = None,
        exit_after: Annotated[
            float | None, typer.Option(help="Stop by itself after this many seconds (default: run until Ctrl-C).")
        ] = None,
    ) -> None:
        """Run the whole platform on a simulated store until Ctrl-C (what `make run` does).

        Starts the local stack, loads a simulated catalog and history once, materialises the asset graph once, then supervises the Dagster webserver and daemon, the streaming job, the API and live traffic, printing where each is. Ctrl-C stops everything it started.
        """
        s = settings()
        started = time.monotonic()
        stack_was_up = all(server.process.pid() or not server.is_local for server in manager.servers(s))
        say("Starting the local stack (the first run provisions Kafka, FerretDB and Spark jars once)")
        typer.echo(manager.format_status(manager.up(s)), err=True)
        config = StoreConfig(seed=seed, products=products, categories=categories, users=users)
        key, read = api_key(s), read_key(s)
        stop = threading.Event()
        previous: dict = {}
        supervisor = Supervisor(platform_children(s, key, read, config, live_rate), say)
        try:
            seed_store(s, config, days)
            materialize_once(s, days, rematerialize, materialize_config)
            say("Starting the platform's processes")
            # From here on Ctrl-C (or SIGTERM) means: stop the children cleanly, then exit.
            previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
            supervisor.start_all()
            api = f"http://{s.api_host}:{s.api_port}"
            typer.echo(
                "\n".join(
                    [
                        "",
                        f"recsys is running (up in {time.monotonic() - started:.0f}s). Ctrl-C stops everything it started.",
                        f"  Storefront   {api}/demo#key={key}&read={read}",
                        f"  API docs     {api}/schema",
                        f"  Dagster UI   http://127.0.0.1:{s.dagster_port}",
                        f"  API key      {key}   (X-API-Key header on POST/PUT/DELETE)",
                        f"  Read key     {read}   (X-API-Key header on a shopper's history and lists)",
                        f"  Kafka        {s.kafka_servers}     MongoDB {s.mongo_url}{s.mongo_db}",
                        f"  Logs         {s.data_dir / 'logs'}/*.log",
                        "",
                    ]
                )
            )
            deadline = time.monotonic() + exit_after if exit_after else None
            supervisor.watch(lambda: stop.is_set() or (deadline is not None and time.monotonic() > deadline))
        except RuntimeError as error:
            typer.secho(f"error: {error}", fg=typer.colors.RED, err=True)
            raise typer.Exit(1) from None
        finally:
            say("Stopping")
            supervisor.stop_all()
            if not stack_was_up:
                manager.down(s)
            for sig, handler in previous.items():
                signal.signal(sig, handler)
