"""Recording every served list as an `impression` on the events topic, without the read waiting for it.

A read answers as soon as its list is computed: the impression is handed to the process's one
Kafka producer (recsys_api.publisher) and its delivery report comes back on the delivery thread.
Nothing on the read's path waits for the broker, and no failure reaches it. An impression Kafka
did not acknowledge (the broker down longer than RECSYS_API_PRODUCE_TIMEOUT_SECONDS) is counted
on /metrics and sent again every RETRY_SECONDS while the process lives. At most
RECSYS_API_IMPRESSION_QUEUE impressions are unacknowledged at once: past that, new ones are
counted as dropped instead of growing the process's memory through a long outage.

An impression's event id is its list's rec_id, so one sent twice is one impression downstream.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import uuid
from collections import deque
from functools import partial
from typing import Any

import msgspec
from confluent_kafka import KafkaError, KafkaException

from recsys_api.metrics import IMPRESSION_FAILURES, IMPRESSIONS_DROPPED
from recsys_api.publisher import Publisher, Record
from recsys_api.serving import ProductList
from recsys_core.events import impression_event

log = logging.getLogger(__name__)

RETRY_SECONDS = 1.0


class Impressions:
    def __init__(self, publisher: Publisher, capacity: int):
        self._publisher = publisher
        self._topic = publisher.topics.events
        self._capacity = capacity
        self._lock = threading.Lock()  # reports arrive on the delivery thread
        self._unacknowledged = 0  # handed to the producer or waiting to be sent again
        self._again: deque[Record] = deque()
        self._retries: asyncio.Task | None = None

    def record(self, surface: str, user_id: str | None, served: ProductList) -> str:
        """Record the impression of a list about to be served; its new rec_id."""
        rec_id = str(uuid.uuid4())
        event = impression_event(
            rec_id,
            user_id,
            surface,
            served.strategy,
            served.products,
            model_version=served.model_version,
            experiment=served.experiment,
            variant=served.variant,
        )
        # Keyed by shopper like their other events; a list of the whole shop by its own id.
        record = (user_id or rec_id, msgspec.json.encode(event))
        with self._lock:
            if self._unacknowledged >= self._capacity:
                IMPRESSIONS_DROPPED.inc()
                return rec_id
            self._unacknowledged += 1
        self._send(record)
        return rec_id

    def _send(self, record: Record) -> None:
        try:
            self._publisher.send_nowait(self._topic, record[0], record[1], partial(self._delivered, record))
        except (BufferError, KafkaException) as error:
            self._delivered(record, error, None)

    def _delivered(self, record: Record, error: KafkaError | Exception | None, _message: Any) -> None:
        if error is None:
            with self._lock:
                self._unacknowledged -= 1
            return
        IMPRESSION_FAILURES.inc()
        self._again.append(record)

    async def _send_again(self) -> None:
        while True:
            await asyncio.sleep(RETRY_SECONDS)
            for _ in range(len(self._again)):
                self._send(self._again.popleft())

    @property
    def unacknowledged(self) -> int:
        return self._unacknowledged

    def start(self) -> None:
        self._retries = asyncio.create_task(self._send_again(), name="impression-retries")

    async def close(self) -> None:
        """Stop sending again; what the producer still holds is flushed when the publisher closes."""
        if self._retries is not None:
            self._retries.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._retries
        if self._again:
            log.warning("%d impressions were never acknowledged by Kafka", len(self._again))
