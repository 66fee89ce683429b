"""Sending the simulated store to the platform: catalog, history backfill, live traffic, replays.

With `publishers` and `backfill`, the only simulator modules with I/O. Events go straight to
`recsys.events` keyed by user_id: paced traffic through the platform's producer, the history
backfill through the bulk producer (several times faster).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pymongo import UpdateOne
from pymongo.errors import PyMongoError

from recsys_core.catalog import parse_product
from recsys_core.documents import next_write_token
from recsys_core.errors import ServerUnavailable
from recsys_core.events import format_ts
from recsys_core.settings import Settings
from recsys_io.mongo import PRODUCTS, mongo_client, require_mongo, serving_db
from recsys_simulator.backfill import PROGRESS_EVERY_EVENTS, events_partitions, send_in_parallel
from recsys_simulator.publishers import BulkPublisher, Publisher, require_kafka
from recsys_simulator.replay import ReplayLine, read_clickstream
from recsys_simulator.sessions import history_events, live_events
from recsys_simulator.store import Store
from recsys_simulator.tally import EventTally
from recsys_simulator.via_api import ServedLists

Report = Callable[[EventTally], None]


class Pacer:
    """Spaces sends `1/rate` apart on a fixed schedule (no drift) for `duration` seconds (default:
    no end); a stop cuts any wait short."""

    def __init__(self, rate: float, stop: threading.Event, duration: float | None = None):
        if rate <= 0:
            raise ValueError("rate must be greater than 0")
        self.interval = 1.0 / rate
        self.stop = stop
        self.next = time.monotonic()
        self.deadline = self.next + duration if duration else math.inf

    def wait(self) -> bool:
        """Block until the next slot; False once stopped or past the duration."""
        if self.next >= self.deadline:
            return False
        delay = self.next - time.monotonic()
        if delay > 0 and self.stop.wait(delay):
            return False
        if self.stop.is_set():
            return False
        # After a stall, catch up at most one second's worth instead of bursting.
        self.next = max(self.next + self.interval, time.monotonic() - 1.0)
        return True


class SendTimes:
    """The times paced events are stamped with: now in milliseconds (an event's `ts` keeps no more),
    each strictly after the one before, so a feed's events keep their order by time alone, whatever
    the rate and even if the clock steps back."""

    def __init__(self, clock: Callable[[], datetime]):
        self.clock = clock
        self.last: datetime | None = None

    def next(self) -> datetime:
        # The rule of the serving store's write tokens: now in milliseconds, always after the last.
        self.last = next_write_token(self.last, self.clock())
        return self.last


def _now() -> datetime:
    return datetime.now(UTC)


def load_catalog(settings: Settings, store: Store) -> int:
    """Upsert every product as `PUT /v1/products` does: recsys.catalog first, then the products collection.

    Products go through the catalog's own validation, and the topic's record and the document
    carry the same fields, so the batch layer and the API see the same product. Returns the count.
    """
    require_mongo(settings)
    now = _now()
    products = [parse_product(p.catalog_record()) for p in store.products]
    with Publisher(settings, linger_ms=20) as publisher:
        for product in products:
            publisher.send(settings.topics.catalog, product["product_id"], {**product, "updated_at": format_ts(now)})
    writes = [UpdateOne({"_id": p["product_id"]}, {"$set": {**p, "updated_at": now}}, upsert=True) for p in products]
    client = mongo_client(settings)
    try:
        serving_db(client, settings)[PRODUCTS].bulk_write(writes, ordered=False)
    except PyMongoError as error:
        raise ServerUnavailable("MongoDB", settings.mongo_url, f"writing products failed ({error})") from error
    finally:
        client.close()
    return len(products)


def send_history(
    settings: Settings,
    store: Store,
    days: int,
    end: datetime | None = None,
    progress: Report | None = None,
    workers: int = 1,
) -> EventTally:
    """Backfill `days` of past events ending at `end` (default: now) to recsys.events, as fast as Kafka takes them.

    With `workers` > 1, that many processes (at most one per partition) each generate and send the
    shoppers of their partitions; the events are the same whatever the count, and the store is
    rebuilt in each process from `store.config`. It pays on machines with cores to spare: on two
    shared cores with the broker beside it, one process is as fast (see docs/simulator.md).
    """
    end = end or _now()
    require_kafka(settings)
    if workers > 1:
        partitions = events_partitions(settings)
        return send_in_parallel(settings, store.config, days, end, min(workers, partitions), partitions, progress)
    tally = EventTally()
    with BulkPublisher(settings, check=False) as publisher:
        for event in history_events(store, days, end):
            publisher.send(settings.topics.events, event["user_id"], event)
            tally.add(event)
            if progress and tally.events % PROGRESS_EVERY_EVENTS == 0:
                progress(tally)
    return tally.finish()


def _paced(
    settings: Settings,
    events: Iterable[dict[str, Any]],
    rate: float,
    stop: threading.Event,
    tally: EventTally,
    report: Report | None,
    report_every: float,
    duration: float | None = None,
) -> EventTally:
    """Send events one slot apart, stamped with the time of sending, until they run out, `stop` is
    set or `duration` has passed (counted once the producer is connected).

    Each stamp is after the one before (`SendTimes`). Past 1,000 events a second that would run the
    stamps ahead of the clock, and the platform refuses events from the future: the feed waits for
    the clock instead, so it sends at most one event per millisecond.
    """
    with Publisher(settings) as publisher:
        pacer = Pacer(rate, stop, duration)
        stamps = SendTimes(_now)
        next_report = time.monotonic() + report_every
        for event in events:
            if not pacer.wait():
                break
            ts = stamps.next()  # the moment it is really sent
            ahead = (ts - _now()).total_seconds()
            if ahead > 0 and stop.wait(ahead):
                break
            event = {**event, "ts": format_ts(ts)}
            publisher.send(settings.topics.events, event["user_id"], event)
            tally.add(event)
            if report and time.monotonic() >= next_report:
                report(tally)
                next_report += report_every
    return tally.finish()


def run_live(
    settings: Settings,
    store: Store,
    rate: float,
    stop: threading.Event,
    duration: float | None = None,
    report: Report | None = None,
    report_every: float = 5.0,
    served: ServedLists | None = None,
) -> EventTally:
    """Live traffic (ts = now) at `rate` events/s until `stop` is set or `duration` seconds pass;
    with `served`, a share of the visits opens on the shopper's recommendations and clicks on them.

    The shoppers and their tastes come from the store's seed; the sessions (and so the event ids)
    are new on every run, because the platform deduplicates events by id and a restarted live
    feed must not repeat the ids of the previous one.
    """
    run = f"live:{time.time_ns()}"
    events = live_events(store, _now, run, served_to=served)
    if served is not None:
        events = _noting_clicks(events, served)
    return _paced(settings, events, rate, stop, EventTally(), report, report_every, duration)


def _noting_clicks(events: Iterator[dict[str, Any]], served: ServedLists) -> Iterator[dict[str, Any]]:
    for event in events:
        yield event
        served.note(event)  # once sent: the feed asks for the next event after sending this one


def replay_file(
    settings: Settings,
    path: Path,
    rate: float = 1.0,
    stop: threading.Event | None = None,
    on_invalid: Callable[[ReplayLine], None] | None = None,
    report: Report | None = None,
    report_every: float = 5.0,
) -> EventTally:
    """Send a clickstream file's valid lines at `rate` per second, stamped now; skip and count bad lines."""
    tally = EventTally()

    def valid_events(lines: Iterable[str]):
        for line in read_clickstream(lines, _now, settings.events_first_day):
            if line.event is not None:
                yield line.event
            else:
                tally.invalid += 1
                if on_invalid:
                    on_invalid(line)

    with path.open(encoding="utf-8", errors="replace") as lines:
        return _paced(settings, valid_events(lines), rate, stop or threading.Event(), tally, report, report_every)
