"""Recording every served list as an `impression` on the events topic, without the read waiting for it.

A read answers as soon as its list is computed: the impression is handed to a Kafka producer of
its own and nothing on the read's path waits for the broker or can fail because of it. No read
waits for an impression's acknowledgement, so that producer is tuned for the broker's and the
process's CPU rather than for latency (a read costs well under a millisecond, and a Python call
or a thread wake-up per record is a large part of that):

- it batches for LINGER_MS, so the broker takes a few requests a second instead of one per read,
  and librdkafka's broker thread wakes up as seldom;
- its delivery reports are served by the process's event loop, REPORT_SECONDS' worth at a time
  (one small Python call each), not by a thread of their own that would take the interpreter lock
  from the loop on every record.

An impression Kafka did not acknowledge (the broker down longer than
RECSYS_API_PRODUCE_TIMEOUT_SECONDS) is counted on /metrics and sent again every RETRY_SECONDS
while the process lives. At most RECSYS_API_IMPRESSION_QUEUE impressions are unacknowledged at
once (held by the producer or waiting to be sent again): past that, new ones are counted as
dropped instead of growing the process's memory through a long outage.

An impression's event id is its list's rec_id, so one sent twice is one impression downstream.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections import deque

import msgspec
from confluent_kafka import KafkaError, KafkaException, Message, Producer

from recsys_api.metrics import IMPRESSION_FAILURES, IMPRESSIONS_DROPPED
from recsys_api.serving import ProductList
from recsys_core.events import impression_event
from recsys_core.settings import Settings
from recsys_io.kafka_bulk import make_bulk_producer

log = logging.getLogger(__name__)

Keyed = tuple[bytes, bytes]  # (key, JSON value), as produced

RETRY_SECONDS = 1.0
REPORT_SECONDS = 0.1
LINGER_MS = 100  # nobody waits for an impression: batch for the broker, not for latency


class Impressions:
    def __init__(self, settings: Settings):
        self._settings = settings
        self._topic = settings.topics.events
        self._capacity = settings.api_impression_queue
        self._producer: Producer | None = None
        self._unacknowledged = 0  # handed to the producer or kept to send again
        self._again: deque[Keyed] = deque()
        self._fatal = False
        self._reports: asyncio.Task | None = None

    def _connect(self) -> Producer:
        return make_bulk_producer(
            self._settings,
            **{
                "client.id": "recsys-api-impressions",
                "linger.ms": LINGER_MS,
                "message.timeout.ms": int(self._settings.api_produce_timeout_seconds * 1000),
                "queue.buffering.max.messages": self._capacity,
                "on_delivery": self._delivered,
            },
        )

    def record(self, surface: str, user_id: str | None, served: ProductList) -> str:
        """Record the impression of a list about to be served; its new rec_id."""
        rec_id = str(uuid.uuid4())
        if self._unacknowledged >= self._capacity:
            IMPRESSIONS_DROPPED.inc()
            return rec_id
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
        self._unacknowledged += 1
        self._send((user_id or rec_id).encode(), msgspec.json.encode(event))
        return rec_id

    def _send(self, key: bytes, value: bytes) -> None:
        producer = self._producer
        try:
            if producer is None:
                raise BufferError("the impressions producer is not running")
            producer.produce(self._topic, value=value, key=key)
        except (BufferError, KafkaException) as error:
            self._kept(key, value, error)

    def _delivered(self, error: KafkaError | None, message: Message) -> None:
        """librdkafka's report on one impression (served by `poll`, on the event loop)."""
        if error is None:
            self._unacknowledged -= 1
            return
        self._fatal = self._fatal or error.fatal()
        self._kept(bytes(message.key() or b""), bytes(message.value() or b""), error)

    def _kept(self, key: bytes, value: bytes, reason: object) -> None:
        IMPRESSION_FAILURES.inc()
        log.debug("impression kept to send again: %s", reason)
        self._again.append((key, value))

    @property
    def unacknowledged(self) -> int:
        return self._unacknowledged

    def _restart(self) -> None:
        """A fatal error (e.g. the idempotent producer's sequence lost) leaves the producer unusable:
        what it still holds comes back as failures, to be sent again by a new one."""
        log.warning("recreating the impressions' Kafka producer after a fatal error")
        old, self._producer = self._producer, self._connect()
        if old is not None:
            old.purge()
            old.poll(0)
        self._fatal = False

    async def _serve_reports(self) -> None:
        retried = time.monotonic()
        while True:
            await asyncio.sleep(REPORT_SECONDS)
            if self._producer is not None:
                self._producer.poll(0)
            if self._fatal:
                self._restart()
            if time.monotonic() - retried >= RETRY_SECONDS:
                retried = time.monotonic()
                for _ in range(len(self._again)):
                    self._send(*self._again.popleft())

    def start(self) -> None:
        self._producer = self._connect()
        self._reports = asyncio.create_task(self._serve_reports(), name="impression-reports")

    async def close(self) -> None:
        """Stop sending again and give what the producer holds up to the produce timeout to be delivered."""
        if self._reports is not None:
            self._reports.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reports
        if self._producer is not None:
            producer = self._producer
            await asyncio.to_thread(producer.flush, self._settings.api_produce_timeout_seconds)
        if lost := self.unacknowledged:
            log.warning("%d impressions were never acknowledged by Kafka", lost)
        self._producer = None
