"""A micro-batch's work in a Spark task: one Kafka partition's records, and so its shoppers, from bytes to MongoDB.

Events are keyed by `user_id`, so a shopper's events of a batch are all in one Kafka partition,
and the Kafka source reads each partition of a batch as one Spark partition (the job neither sets
`minPartitions` nor repartitions). A task therefore owns its shoppers: it validates its records,
dead-letters the bad ones with their reason, merges its shoppers' histories, scores them and
writes their documents in bulk. It returns one small summary (`PartitionTask`), whatever the
number of records.

What a task may do twice is harmless: Spark re-runs a failed task, may run a slow one twice at
once (speculation), and replays a whole batch after a crash. Histories are merges, every write is
guarded by the token it read (streaming.store), and a dead letter is keyed by its source record.

The clients and caches live as long as the Python worker that runs the tasks (Spark reuses it
from task to task): one Mongo client and one Kafka producer per worker, and per serving database
the documents the worker wrote last and the reference data it read (`ShopperWorker`).
"""

from __future__ import annotations

import gc
import json
import logging
import time
from collections import OrderedDict, defaultdict, deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from kafka import KafkaProducer
from pymongo import MongoClient

from recsys_core.erasure import erased_before, user_hash
from recsys_core.events import USER_ERASURE, InvalidEvent, changes_shopper_state, parse_event, parse_ts
from recsys_core.history import SEQ, BrowsingHistory
from recsys_core.settings import Settings
from recsys_io.kafka import make_producer
from recsys_io.mongo import ERASURES, HISTORY, RECOMMENDATIONS, erase_documents, mongo_client, serving_db
from streaming.dlq import SourceRecord, dead_letter, send_dead_letters
from streaming.model import ModelFiles, PromotedModel, promoted_model
from streaming.retry import with_backoff
from streaming.store import (
    ReferenceData,
    Tokens,
    Writes,
    WrittenDocuments,
    read_by_id,
    update_histories,
    update_recommendations,
    wait_all,
)

log = logging.getLogger("recsys.stream")
HISTORY_CACHE_SIZE = 20_000
RECOMMENDATION_CACHE_SIZE = 200_000
# How long a product's category, a neighbour list or a bestseller list is used before it is read again.
REFERENCE_TTL_SECONDS = 60.0
# Shoppers written together (history, then recommendations) before the next group starts.
WRITE_GROUP = 128
# Python's default is (700, 10, 10): see `tune_collector`.
COLLECTOR_THRESHOLDS = (2_000, 10, 30)
# How long a task waits out a store or broker that is down before it fails, and Spark runs it
# again or the query restarts from its checkpoint: bounded, so that the job's shutdown, which waits
# for the batch in flight, is not held up by an outage for longer.
TASK_PATIENCE_SECONDS = 60.0
# Serving databases a worker keeps caches for (the job has one; a test session has many).
KEPT_DATABASES = 4


def tune_collector() -> None:
    """Python's cycle collector for a long-lived worker; call once what the worker keeps is set up.

    Freezing moves what exists now (the modules, pyspark's objects) out of every later collection,
    and collecting the young generation less often lets the objects of a shopper's history and list
    die by reference count first (figures in docs/streaming.md).
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(*COLLECTOR_THRESHOLDS)


def validate(records: Iterable[SourceRecord], first_day: date) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(canonical events, dead letters): every record ends up in exactly one of the two.

    Each event carries its record's offset as its arrival position (recsys_core.history.SEQ): it
    orders a shopper's events of one millisecond, all in the one partition their key picks.
    """
    events, letters = [], []
    for record in records:
        if record.value is None:
            letters.append(dead_letter(record, "empty record", [{"field": "", "reason": "the record has no value"}]))
            continue
        try:
            raw = json.loads(record.value)
        except (UnicodeDecodeError, ValueError) as error:
            letters.append(dead_letter(record, "not JSON", [{"field": "", "reason": str(error)}]))
            continue
        try:
            event = parse_event(raw, first_day=first_day, allow_internal=True)
        except InvalidEvent as error:
            letters.append(dead_letter(record, "invalid event", [e.as_dict() for e in error.errors]))
            continue
        event[SEQ] = record.offset
        events.append(event)
    return events, letters


def by_user(events: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """The events that change what shoppers are served, by shopper (clicks and impressions go by:
    they are kept in the lake, and a list served must not rewrite the next one)."""
    grouped: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for event in events:
        if changes_shopper_state(event):
            grouped[event["user_id"]].append(event)
    return grouped


class ShopperWorker:
    """What one Python worker keeps for one serving database between tasks, and how it applies events."""

    def __init__(self, settings: Settings, client: MongoClient):
        self.db = serving_db(client, settings)
        self.tokens = Tokens()
        # Shoppers seen lately: their last written history (~15 KB each with 50 views) and
        # recommendation tokens, so their next batch need not read them back.
        self.histories = WrittenDocuments(HISTORY_CACHE_SIZE)
        self.recommendations = WrittenDocuments(RECOMMENDATION_CACHE_SIZE)
        self.reference = ReferenceData(REFERENCE_TTL_SECONDS)
        # One writes thread per collection: FerretDB stores a group's recommendations while the
        # next group's histories are stored (each collection's writes stay in order).
        self.writes = {HISTORY: Writes(), RECOMMENDATIONS: Writes()}

    def honour_erasures(self, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The events to apply: erasures carried out (the shopper's documents deleted, the erasure
        recorded), and the events of erased shoppers older than their erasure left out.

        One read of the `erasures` collection for the task's shoppers (by their ids' hashes), so
        an event that arrives after the erasure, however late, cannot bring the shopper back.
        """
        for event in events:
            if event["type"] == USER_ERASURE:
                erase_documents(self.db, event["user_id"], parse_ts(event["ts"]))
                self.histories.forget([event["user_id"]])
                self.recommendations.forget([event["user_id"]])
        hashes = {user_hash(e["user_id"]) for e in events if e["user_id"] is not None}
        erased_at = {key: doc["erased_at"] for key, doc in read_by_id(self.db[ERASURES], hashes).items()}
        if not erased_at:
            return events
        return [
            e
            for e in events
            if e["user_id"] is None or not erased_before(parse_ts(e["ts"]), erased_at.get(user_hash(e["user_id"])))
        ]

    def apply(self, events: list[dict[str, Any]], model: PromotedModel | None, phases: dict[str, float]) -> None:
        """Write the shoppers' histories, then the recommendations computed from them; time each.

        Shoppers go in groups of WRITE_GROUP, those whose events are oldest first: an event that
        just missed the previous batch has already waited a whole batch, so its shopper is written
        before those whose events only just arrived. Written in one piece, in no particular
        order, the slowest 5% of events waited for the whole batch on top (docs/streaming.md).

        The writes run on two threads of their own (`Writes`), one per collection, each in
        order: the histories of every group are computed and queued; as soon as a group's
        histories are stored (a history that changed meanwhile is merged again first), its
        recommendations are computed and queued, while the next groups' histories are stored.
        `phases` gets the time spent computing each and waiting for the store.
        """
        grouped = by_user(events)
        phases.update(users=len(grouped), history=0.0, recommendations=0.0, waiting=0.0)  # afresh when retried
        times = {user: [parse_ts(e["ts"]) for e in user_events] for user, user_events in grouped.items()}
        newest = {user: max(stamps) for user, stamps in times.items()}
        oldest_first = sorted(grouped, key=lambda user: min(times[user]))
        groups = [
            {user: grouped[user] for user in oldest_first[start : start + WRITE_GROUP]}
            for start in range(0, len(oldest_first), WRITE_GROUP)
        ]
        try:
            stored: deque[tuple[dict[str, BrowsingHistory], Future | None]] = deque()  # oldest group first
            for group in groups:
                started = time.monotonic()
                stored.append(update_histories(self.db, group, self.tokens, self.histories, self.writes[HISTORY]))
                phases["history"] += time.monotonic() - started
                while stored and (stored[0][1] is None or stored[0][1].done()):
                    self._recommend(*stored.popleft(), newest, model, phases)
            while stored:
                self._recommend(*stored.popleft(), newest, model, phases)
        finally:
            phases["waiting"] += wait_all(self.writes.values())

    def _recommend(
        self,
        histories: dict[str, BrowsingHistory],
        written: Future | None,
        newest: dict[str, datetime],
        model: PromotedModel | None,
        phases: dict[str, float],
    ) -> None:
        """Once `histories` are stored (`written`), compute their shoppers' recommendations and submit the write."""
        started = time.monotonic()
        if written is not None:
            written.result()
        phases["waiting"] += time.monotonic() - started
        started = time.monotonic()
        update_recommendations(
            self.db,
            histories,
            newest,
            model,
            self.tokens,
            self.recommendations,
            self.reference,
            self.writes[RECOMMENDATIONS],
        )
        phases["recommendations"] += time.monotonic() - started

    def close(self) -> None:
        for writes in self.writes.values():
            writes.close()


# This Python worker's clients and caches (see the module's docstring).
_clients: dict[str, MongoClient] = {}
_producers: dict[str, KafkaProducer] = {}
_workers: OrderedDict[tuple[str, str], ShopperWorker] = OrderedDict()


def shopper_worker(settings: Settings) -> ShopperWorker:
    key = (settings.mongo_url, settings.mongo_db)
    if key not in _workers:
        if not _workers and not _clients:
            tune_collector()  # the worker's first task: what it keeps from now on is set up below
        if settings.mongo_url not in _clients:
            _clients[settings.mongo_url] = mongo_client(settings)
        _workers[key] = ShopperWorker(settings, _clients[settings.mongo_url])
        while len(_workers) > KEPT_DATABASES:
            _workers.popitem(last=False)[1].close()
    _workers.move_to_end(key)
    return _workers[key]


def dlq_producer(settings: Settings) -> KafkaProducer:
    if settings.kafka_servers not in _producers:
        _producers[settings.kafka_servers] = make_producer(settings, client_id="recsys-stream-dlq")
    return _producers[settings.kafka_servers]


def source_records(rows: Iterable[Any]) -> Iterator[SourceRecord]:
    """The Kafka source's rows (topic, partition, offset, value) as the job reads them."""
    for row in rows:
        yield SourceRecord(row.topic, row.partition, row.offset, None if row.value is None else bytes(row.value))


@dataclass(frozen=True)
class PartitionTask:
    """The function a micro-batch's tasks run (`mapPartitions`): shipped to executors with what it names.

    Yields one summary per partition: counts and seconds, what the driver reports for the batch.
    """

    settings: Settings
    model: ModelFiles | None
    batch_id: int

    def __call__(self, rows: Iterable[Any]) -> Iterator[dict[str, Any]]:
        started, cpu = time.monotonic(), time.process_time()
        records = list(source_records(rows))
        events, letters = validate(records, self.settings.events_first_day)
        summary: dict[str, Any] = {
            "records": len(records),
            "events": len(events),
            "dead_letters": len(letters),
            "erased": 0,
            "users": 0,
            "history": 0.0,
            "recommendations": 0.0,
            "waiting": 0.0,
        }
        where = f"batch {self.batch_id}, partition {records[0].partition}" if records else ""
        if letters:
            with_backoff(
                lambda: send_dead_letters(dlq_producer(self.settings), self.settings.topics.dlq, letters),
                f"{where}: sending {len(letters)} records to the DLQ",
                give_up_after=TASK_PATIENCE_SECONDS,
            )
        if events:
            worker, model = shopper_worker(self.settings), self._promoted_model(summary)

            def write() -> None:
                kept = worker.honour_erasures(events)
                summary["erased"] = len(events) - len(kept)
                worker.apply(kept, model, summary)

            with_backoff(write, f"{where}: writing to MongoDB", give_up_after=TASK_PATIENCE_SECONDS)
        # The worker's CPU, its writes threads' included.
        summary.update(seconds=time.monotonic() - started, cpu_seconds=time.process_time() - cpu)
        yield summary

    def _promoted_model(self, summary: dict[str, Any]) -> PromotedModel | None:
        """The batch's model; without one if it cannot be loaded, which the summary tells the driver."""
        try:
            return promoted_model(self.model)
        except Exception as error:  # noqa: BLE001 - a bad model must not stop the stream
            version = self.model.version if self.model else None
            summary["model_failed"] = (version, f"{type(error).__name__}: {error}"[:300])
            return None
