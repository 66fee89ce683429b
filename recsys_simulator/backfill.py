"""The history backfill in parallel: one process per share of Kafka partitions.

Generating events is pure Python and bound by one core; shoppers have random streams of their
own, so the shoppers of each partition can be generated and sent by a separate process. Every
partition is written by one process, in time order, so each shopper's events stay in order and the
events are exactly those of the single-process stream.
"""

from __future__ import annotations

import multiprocessing
import queue
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from kafka.partitioner.default import murmur2

from recsys_core.errors import RecsysError
from recsys_core.settings import Settings
from recsys_io.kafka import make_consumer
from recsys_simulator.publishers import BulkPublisher
from recsys_simulator.sessions import history_events
from recsys_simulator.store import StoreConfig, build_store
from recsys_simulator.tally import EventTally

PROGRESS_EVERY_EVENTS = 5_000


class BackfillFailed(RecsysError):
    """A backfill process stopped with an error."""


def partition_of(key: str, partitions: int) -> int:
    """The partition Kafka's default partitioner (murmur2 of the key) gives a key."""
    return (murmur2(key.encode()) & 0x7FFFFFFF) % partitions


def events_partitions(settings: Settings) -> int:
    consumer = make_consumer(settings, group_id=None)
    try:
        return len(consumer.partitions_for_topic(settings.topics.events) or ()) or settings.events_partitions
    finally:
        consumer.close()


@dataclass(frozen=True)
class Share:
    """What one process sends: the shoppers whose user_id falls on these partitions."""

    settings: Settings
    config: StoreConfig
    days: int
    end: datetime
    partitions: tuple[int, ...]
    partition_count: int


def _send_share(share: Share, reports: Any) -> None:
    """Process body: generate and send this share's events, reporting progress and the final tally."""
    try:
        store = build_store(share.config)
        mine = [
            i
            for i, shopper in enumerate(store.shoppers)
            if partition_of(shopper.user_id, share.partition_count) in share.partitions
        ]
        tally = EventTally()
        with BulkPublisher(share.settings, check=False) as publisher:
            for event in history_events(store, share.days, share.end, shoppers=mine):
                publisher.send(share.settings.topics.events, event["user_id"], event)
                tally.add(event)
                if tally.events % PROGRESS_EVERY_EVENTS == 0:
                    reports.put(("progress", share.partitions, dict(tally.by_type), tally.last_ts))
        reports.put(("done", share.partitions, tally))
    except BaseException as error:  # noqa: BLE001 - reported to the parent, which raises it as a sentence
        reports.put(("error", share.partitions, f"{type(error).__name__}: {error}"))


def send_in_parallel(
    settings: Settings,
    config: StoreConfig,
    days: int,
    end: datetime,
    workers: int,
    partition_count: int,
    progress: Any = None,
) -> EventTally:
    """Run `workers` processes over the partitions; merge their tallies into one."""
    context = multiprocessing.get_context("spawn")  # no fork of a process holding client threads
    reports = context.Queue()
    shares = [
        Share(settings, config, days, end, tuple(range(w, partition_count, workers)), partition_count)
        for w in range(workers)
    ]
    processes = [context.Process(target=_send_share, args=(share, reports), daemon=True) for share in shares]
    total, running = EventTally(), {share.partitions: (dict(), None) for share in shares}
    for process in processes:
        process.start()
    try:
        while running:
            try:
                kind, partitions, *payload = reports.get(timeout=1.0)
            except queue.Empty:
                if not any(p.is_alive() for p in processes):
                    raise BackfillFailed("a backfill process ended without reporting") from None
                continue
            if kind == "error":
                raise BackfillFailed(f"sending partitions {list(partitions)} failed: {payload[0]}")
            if kind == "done":
                total.merge(payload[0])
                del running[partitions]
            else:
                running[partitions] = tuple(payload)
            if progress:
                progress(_progress_view(total, running.values()))
    finally:
        for process in processes:
            process.join(timeout=5)
            if process.is_alive():
                process.terminate()
    return total.finish()


def _progress_view(total: EventTally, running: Any) -> EventTally:
    """Events so far; last_ts is where every process has got to (the slowest one)."""
    view = EventTally(started=total.started)
    view.by_type.update(total.by_type)
    stamps = [total.last_ts] if total.last_ts else []
    for by_type, last_ts in running:
        view.by_type.update(by_type)
        if last_ts:
            stamps.append(last_ts)
    view.last_ts = min(stamps) if stamps else None
    return view
