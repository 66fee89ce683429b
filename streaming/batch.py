"""One micro-batch: validate every record, dead-letter the bad ones, apply the rest to MongoDB.

The batch is committed to the query's checkpoint only when `__call__` returns, and it returns
only after the DLQ acks and the Mongo writes succeeded (waiting out outages), so a crash at any
point replays the batch, and the idempotent writes make the replay harmless.
"""

from __future__ import annotations

import gc
import json
import logging
import threading
import time
from collections import defaultdict, deque
from concurrent.futures import Future
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from recsys_core.events import InvalidEvent, changes_shopper_state, parse_event, parse_ts
from recsys_core.history import SEQ, BrowsingHistory
from recsys_core.settings import Settings
from recsys_io.kafka import make_producer
from recsys_io.mongo import HISTORY, RECOMMENDATIONS, mongo_client, serving_db
from streaming.dlq import SourceRecord, dead_letter, send_dead_letters
from streaming.model import ModelCache, PromotedModel
from streaming.retry import StopRequested, with_backoff
from streaming.store import (
    ReferenceData,
    Tokens,
    Writes,
    WrittenDocuments,
    update_histories,
    update_recommendations,
    wait_all,
)

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

log = logging.getLogger("recsys.stream")
HISTORY_CACHE_SIZE = 20_000
RECOMMENDATION_CACHE_SIZE = 200_000
# How long a product's category, a neighbour list or a bestseller list is used before it is read again.
REFERENCE_TTL_SECONDS = 60.0
# Shoppers written together (history, then recommendations) before the next group starts.
WRITE_GROUP = 128
# Python's default is (700, 10, 10): see `tune_collector`.
COLLECTOR_THRESHOLDS = (2_000, 10, 30)


def tune_collector() -> None:
    """Python's cycle collector for a long-running job; call once everything the job keeps is set up.

    Freezing moves what exists now (Spark's and py4j's objects, the modules) out of every later
    collection, and collecting the young generation less often lets the objects of a shopper's
    history and list die by reference count first (figures in docs/streaming.md).
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(*COLLECTOR_THRESHOLDS)


def validate(records: list[SourceRecord], first_day: date) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
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


class BatchProcessor:
    """The `foreachBatch` function of the speed layer, with the clients it keeps between batches."""

    def __init__(self, settings: Settings, spark: SparkSession):
        self.settings = settings
        self.models = ModelCache(spark)
        self.stopping = threading.Event()
        # Held for a whole batch: shutdown takes it to know no batch is half done.
        self.busy = threading.Lock()
        self._mongo = mongo_client(settings)
        self._producer = None
        self._tokens = Tokens()
        # Shoppers seen lately: their last written history (~15 KB each with 50 views) and
        # recommendation tokens, so their next batch need not read them back.
        self._histories = WrittenDocuments(HISTORY_CACHE_SIZE)
        self._recommendations = WrittenDocuments(RECOMMENDATION_CACHE_SIZE)
        self._reference = ReferenceData(REFERENCE_TTL_SECONDS)
        # One writes thread per collection: FerretDB stores a group's recommendations while the
        # next group's histories are stored (each collection's writes stay in order).
        self._writes = {HISTORY: Writes(), RECOMMENDATIONS: Writes()}
        self.batches = 0
        self.events = 0
        self.dead_letters = 0

    def __call__(self, frame: DataFrame, batch_id: int) -> None:
        with self.busy:
            if self.stopping.is_set():
                raise StopRequested(f"batch {batch_id}")
            started = time.monotonic()
            records = [
                SourceRecord(r.topic, r.partition, r.offset, None if r.value is None else bytes(r.value))
                for r in frame.collect()
            ]
            events, letters = validate(records, self.settings.events_first_day)
            read_ms = (time.monotonic() - started) * 1000
            if letters:
                with_backoff(
                    lambda: send_dead_letters(self._dlq_producer(), self.settings.topics.dlq, letters),
                    f"batch {batch_id}: sending {len(letters)} records to the DLQ",
                    self.stopping,
                )
            phases = {"users": 0, "history": 0.0, "recommendations": 0.0, "waiting": 0.0}
            if events:
                with_backoff(
                    lambda: self._apply(events, phases), f"batch {batch_id}: writing to MongoDB", self.stopping
                )
            self.batches += 1
            self.events += len(events)
            self.dead_letters += len(letters)
            if records:
                log.info(
                    "batch %d: %d events applied, %d to the DLQ, %d users, %.0f ms (read %.0f ms, "
                    "history %.0f ms, recommendations %.0f ms, waiting for the store %.0f ms)",
                    batch_id,
                    len(events),
                    len(letters),
                    phases["users"],
                    (time.monotonic() - started) * 1000,
                    read_ms,
                    phases["history"] * 1000,
                    phases["recommendations"] * 1000,
                    phases["waiting"] * 1000,
                )

    def _apply(self, events: list[dict[str, Any]], phases: dict[str, float]) -> None:
        """Write the batch's histories, then the recommendations computed from them; time each.

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
        db = serving_db(self._mongo, self.settings)
        model = self.models.current(db)
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
                stored.append(update_histories(db, group, self._tokens, self._histories, self._writes[HISTORY]))
                phases["history"] += time.monotonic() - started
                while stored and (stored[0][1] is None or stored[0][1].done()):
                    self._recommend(db, *stored.popleft(), newest, model, phases)
            while stored:
                self._recommend(db, *stored.popleft(), newest, model, phases)
        finally:
            phases["waiting"] += wait_all(self._writes.values())

    def _recommend(
        self,
        db,
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
            db,
            histories,
            newest,
            model,
            self._tokens,
            self._recommendations,
            self._reference,
            self._writes[RECOMMENDATIONS],
        )
        phases["recommendations"] += time.monotonic() - started

    def _dlq_producer(self):
        if self._producer is None:
            self._producer = make_producer(self.settings, client_id="recsys-stream-dlq")
        return self._producer

    def close(self) -> None:
        for writes in self._writes.values():
            writes.close()
        if self._producer is not None:
            self._producer.close(timeout=10)
        self._mongo.close()
