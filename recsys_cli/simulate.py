"""`recsys simulate catalog|history|live` and `recsys replay FILE`: traffic for the platform."""

from __future__ import annotations

import signal
import sys
import threading
import time
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from recsys_cli.common import fail, friendly_errors, settings
from recsys_core.events import InvalidEvent, parse_ts
from recsys_simulator import EventTally, Store, StoreConfig, build_store, feed
from recsys_simulator.replay import ReplayLine
from recsys_simulator.via_api import ServedLists, load_catalog_via_api

simulate_app = typer.Typer(
    help=(
        "A simulated shop sending believable traffic to the platform: a catalog of products in "
        "categories (a few products are far more popular than the rest), shoppers who prefer 1-3 "
        "categories and come back, sessions of views that sometimes end in a cart, a purchase and a "
        "rating.\n\n"
        "Seeded: the same --seed and sizes give the same catalog and the same events (ids included). "
        "Typical start: `recsys simulate catalog`, then `recsys simulate history --days 60`, then "
        "`recsys simulate live --rate 20`. Kafka and MongoDB come from RECSYS_* settings "
        "(see `recsys stack --help`)."
    ),
    no_args_is_help=True,
)

Seed = Annotated[int, typer.Option("--seed", help="Seed of the simulated store: same seed, same store and events.")]
Users = Annotated[int, typer.Option("--users", min=1, help="How many shoppers.")]
Products = Annotated[int, typer.Option("--products", min=1, help="How many products (at least one per category).")]
Categories = Annotated[
    int, typer.Option("--categories", min=1, help="How many categories (16 named ones, then invented ones).")
]
UserPrefix = Annotated[
    str, typer.Option("--user-prefix", help="Prepended to every user id (e.g. 'sim-'), to tell populations apart.")
]


def _store(seed: int, users: int, products: int, categories: int, user_prefix: str = "") -> Store:
    return build_store(
        StoreConfig(seed=seed, products=products, categories=categories, users=users, user_prefix=user_prefix)
    )


class _Status:
    """A progress line: rewritten in place on a terminal, one line every few seconds otherwise."""

    def __init__(self, every: float = 5.0):
        self.tty = sys.stderr.isatty()
        self.every = 0.25 if self.tty else every
        self.last = 0.0

    def __call__(self, text: str) -> None:
        now = time.monotonic()
        if now - self.last < self.every:
            return
        self.last = now
        if self.tty:
            typer.echo(f"\r\033[K{text}", err=True, nl=False)
        else:
            typer.echo(text, err=True)

    def done(self) -> None:
        """End the line rewritten in place, so the summary starts on its own line."""
        if self.tty and self.last:
            typer.echo("", err=True)


@contextmanager
def _stop_on_signals():
    """Ctrl-C or SIGTERM sets the event, so a paced feed flushes, stops and prints its summary."""
    stop = threading.Event()
    handler = lambda *_: stop.set()  # noqa: E731
    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def _live_line(tally: EventTally) -> str:
    types = ", ".join(f"{name} {count:,}" for name, count in sorted(tally.by_type.items()))
    return f"{tally.elapsed:6.0f}s  sent {tally.events:,} ({tally.rate:.1f}/s)  {types}"


@simulate_app.command()
@friendly_errors
def catalog(
    seed: Seed = 42,
    products: Products = 500,
    categories: Categories = 12,
    via_api: Annotated[
        str | None,
        typer.Option(
            "--via-api",
            metavar="URL",
            help="Send the products through the API's PUT /v1/products at this base URL "
            "(e.g. http://127.0.0.1:8000) instead of straight to Kafka and MongoDB.",
        ),
    ] = None,
    api_key: Annotated[
        str | None,
        typer.Option("--api-key", help="X-API-Key for --via-api (default: the first of RECSYS_API_KEYS, if any)."),
    ] = None,
) -> None:
    """Publish the simulated catalog on the catalog topic (key product_id) and upsert the products collection.

    Idempotent: running it again republishes the same products unchanged.
    """
    store = _store(seed, 1, products, categories)
    started = time.monotonic()
    if via_api:
        s = settings()
        count = load_catalog_via_api(via_api, store, api_key or next(iter(s.api_keys), None))
        where = f"through {via_api.rstrip('/')}/v1/products"
    else:
        count = feed.load_catalog(settings(), store)
        where = f"{settings().topics.catalog} and the products collection"
    typer.echo(
        f"loaded {count:,} products in {len(store.categories)} categories "
        f"in {time.monotonic() - started:.1f}s ({where})"
    )


@simulate_app.command()
@friendly_errors
def history(
    days: Annotated[int, typer.Option("--days", min=1, help="How many days of past traffic, ending now.")] = 60,
    until: Annotated[
        str | None,
        typer.Option(
            "--until",
            help="End of the history instead of now (ISO-8601 with zone, e.g. 2026-11-01T00:00:00Z); "
            "with the same seed it reproduces exactly the same events.",
        ),
    ] = None,
    seed: Seed = 42,
    users: Users = 2000,
    products: Products = 500,
    categories: Categories = 12,
    user_prefix: UserPrefix = "",
    workers: Annotated[
        int,
        typer.Option(
            "--workers",
            min=1,
            help="Processes generating and sending in parallel, at most one per partition of "
            "recsys.events; worth it with cores to spare. The events are the same for any count.",
        ),
    ] = 1,
) -> None:
    """Backfill past events (past timestamps, in time order) straight to the events topic, keyed by user_id.

    Defaults (2,000 shoppers, 500 products, 60 days) make about 200,000 events. Load the catalog first (`recsys simulate catalog` with the same --seed, --products and --categories).
    """
    end = None
    if until is not None:
        try:
            end = parse_ts(until, "--until")
        except InvalidEvent as error:
            fail(str(error), code=2)
        if end > datetime.now(UTC):
            fail(f"--until {until} is in the future: a history ends at the latest now", code=2)
    store = _store(seed, users, products, categories, user_prefix)
    status = _Status()

    def progress(tally: EventTally) -> None:
        status(f"sent {tally.events:,} events, up to {tally.last_ts}, {tally.rate:,.0f} events/s")

    tally = feed.send_history(settings(), store, days, end=end, progress=progress, workers=workers)
    status.done()
    typer.echo(tally.summary())


@simulate_app.command()
@friendly_errors
def live(
    rate: Annotated[float, typer.Option("--rate", min=0.01, help="Events per second.")] = 20.0,
    duration: Annotated[
        float | None,
        typer.Option("--duration", min=0.1, help="Stop after this many seconds (default: run until Ctrl-C)."),
    ] = None,
    seed: Seed = 42,
    users: Users = 2000,
    products: Products = 500,
    categories: Categories = 12,
    user_prefix: UserPrefix = "",
    react_via: Annotated[
        str | None,
        typer.Option(
            "--react-via",
            metavar="URL",
            help="Half the visits open on the shopper's recommendations read from the API at this base URL "
            "(e.g. http://127.0.0.1:8000) and click on what the shopper likes, so the online metrics and "
            "experiments have something to measure.",
        ),
    ] = None,
    read_key: Annotated[
        str | None,
        typer.Option(
            "--read-key",
            help="X-API-Key for --react-via (default: the first of RECSYS_API_READ_KEYS, else of RECSYS_API_KEYS).",
        ),
    ] = None,
) -> None:
    """Send live traffic (timestamp = now) at --rate events/s until Ctrl-C or --duration.

    Several shoppers browse at once, with the same tastes as in `simulate history` (same --seed and sizes), so their recommendations keep moving. A line every 5 seconds says what was sent, and with --react-via what the shoppers clicked per served strategy or experiment variant.
    """
    store = _store(seed, users, products, categories, user_prefix)
    s = settings()
    served = None
    if react_via:
        served = ServedLists(react_via, read_key or next(iter(s.api_read_keys or s.api_keys), None))

    def line(tally: EventTally) -> str:
        return _live_line(tally) + (f"\n        {served.summary()}" if served else "")

    with _stop_on_signals() as stop:
        typer.echo(f"sending live events at {rate:g}/s to {s.topics.events}; Ctrl-C stops", err=True)
        tally = feed.run_live(
            s, store, rate, stop, duration=duration, report=lambda t: typer.echo(line(t), err=True), served=served
        )
    typer.echo(tally.summary())
    if served:
        typer.echo(served.summary())


def replay(
    file: Annotated[Path, typer.Argument(help="Clickstream file: one JSON event per line.")],
    rate: Annotated[
        float,
        typer.Option(
            "--rate",
            min=0.01,
            help="Events per second (at most 1,000: each line is stamped at least a millisecond after the one before).",
        ),
    ] = 1.0,
) -> None:
    """Replay a clickstream file to the events topic, one event per second (or --rate), stamped now.

    Each line is {"event": "ProductView", "messageid": ..., "userid": ..., "properties": {"productid": ...}, "context": {"source": ...}}; the platform's own event format works too.

    Any timestamp in the file is replaced by the time of sending, each line's strictly after the line before, so the file's order is kept; a message id always gives the same event id, so a replay sent twice is recognisable. Invalid lines are reported with their line number and reason, skipped and counted in the summary; the replay goes on.
    """
    if not file.is_file():
        fail(f"{file} is not a readable file", code=2)

    def invalid(line: ReplayLine) -> None:
        typer.secho(f"line {line.number}: skipped: {line.reason}", fg=typer.colors.YELLOW, err=True)

    with _stop_on_signals() as stop:
        typer.echo(f"replaying {file} at {rate:g} events/s to {settings().topics.events}; Ctrl-C stops", err=True)
        tally = feed.replay_file(
            settings(), file, rate, stop, on_invalid=invalid, report=lambda t: typer.echo(_live_line(t), err=True)
        )
    typer.echo(tally.summary())


def register(app: typer.Typer) -> None:
    """Add `recsys simulate ...` and `recsys replay` to `app`."""
    app.add_typer(simulate_app, name="simulate")
    app.command("replay")(friendly_errors(replay))
