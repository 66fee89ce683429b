"""Writing to Kafka from async handlers: one producer per process, acknowledgements awaited, never blocking.

Impressions, which nobody waits for, have a producer of their own (recsys_api.impressions).

The producer is librdkafka's (recsys_io.kafka_bulk: idempotent, acks from all in-sync
replicas, the same partition per key as every other producer of the platform). `produce` only
queues; a delivery thread polls librdkafka and resolves each request's future once the broker
acknowledged its last record, so handlers await without holding a thread per request. kafka-python's
producer spends its time per record in Python and capped the API's writes (figures in docs/api.md).

Records not acknowledged within RECSYS_API_PRODUCE_TIMEOUT_SECONDS fail in librdkafka itself
(message.timeout.ms), so a request that answered 503 leaves nothing queued to trickle in later
unnoticed. The producer connects in the background: the API starts and serves reads while Kafka
is down, writes answer 503 until it is back, and librdkafka reconnects by itself.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Sequence
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Producer

from recsys_api.errors import Unavailable
from recsys_api.metrics import PRODUCE_FAILURES
from recsys_core.settings import Settings
from recsys_io.kafka import kafka_ping
from recsys_io.kafka_bulk import make_bulk_producer

log = logging.getLogger(__name__)

Record = tuple[str, bytes]  # (key, JSON value)
POLL_SECONDS = 0.05


class _Acks:
    """Counts one request's delivery reports (on the delivery thread) and settles its future once."""

    def __init__(self, loop: asyncio.AbstractEventLoop, expected: int):
        self.loop = loop
        self.remaining = expected
        self.error: KafkaError | None = None
        self.future: asyncio.Future[KafkaError | None] = loop.create_future()

    def __call__(self, error: KafkaError | None, _message) -> None:
        if error is not None and self.error is None:
            self.error = error
        self.remaining -= 1
        if self.remaining == 0:
            self.loop.call_soon_threadsafe(self._settle)

    def _settle(self) -> None:
        if not self.future.done():
            self.future.set_result(self.error)


class Publisher:
    def __init__(self, settings: Settings):
        self.settings = settings
        self.topics = settings.topics
        self.timeout = settings.api_produce_timeout_seconds
        self._producer: Producer | None = None
        self._running = threading.Event()
        self._delivery: threading.Thread | None = None

    def _connect(self) -> Producer:
        return make_bulk_producer(
            self.settings,
            **{
                "client.id": "recsys-api",
                "linger.ms": 2,  # a request waits for its acks: batch briefly, not for throughput
                "message.timeout.ms": int(self.timeout * 1000),
                "queue.buffering.max.messages": 200_000,
            },
        )

    def _deliver(self) -> None:
        while self._running.is_set():
            producer = self._producer
            if producer is not None:
                producer.poll(POLL_SECONDS)

    async def start(self) -> None:
        self._producer = self._connect()
        self._running.set()
        self._delivery = threading.Thread(target=self._deliver, name="kafka-delivery", daemon=True)
        self._delivery.start()

    def _failed(self, topic: str, count: int, reason: object) -> Unavailable:
        PRODUCE_FAILURES.labels(topic).inc()
        log.warning("Kafka did not acknowledge %d records on %s: %s", count, topic, reason)
        return Unavailable(
            "Kafka did not acknowledge the write in time; retry later with the same event "
            "ids (duplicates are dropped downstream)",
            {"reason": str(reason)},
        )

    async def publish(self, topic: str, records: Sequence[Record]) -> None:
        """Return once the broker acknowledged every record; raise Unavailable (503) otherwise."""
        producer = self._producer
        if producer is None:
            raise self._failed(topic, len(records), "the producer is not running")
        acks = _Acks(asyncio.get_running_loop(), len(records))
        try:
            for key, value in records:
                producer.produce(topic, value=value, key=key.encode(), on_delivery=acks)
        except (BufferError, KafkaException) as error:
            # Already queued records still get their reports; nobody waits for them.
            raise self._failed(topic, len(records), error) from None
        try:
            # librdkafka fails undelivered records after message.timeout.ms: the margin is for the poll.
            error = await asyncio.wait_for(acks.future, self.timeout + 1)
        except TimeoutError:
            raise self._failed(topic, len(records), "no delivery report in time") from None
        if error is not None:
            if error.fatal():
                self._restart()
            raise self._failed(topic, len(records), error)

    def send_nowait(
        self, topic: str, key: str, value: bytes, on_delivery: Callable[[KafkaError | None, Any], None]
    ) -> None:
        """Queue one record and return at once; `on_delivery` gets its report on the delivery thread.

        Raises BufferError or KafkaException when the record could not even be queued.
        """
        producer = self._producer
        if producer is None:
            raise BufferError("the producer is not running")
        producer.produce(topic, value=value, key=key.encode(), on_delivery=on_delivery)

    def _restart(self) -> None:
        """A fatal error (e.g. the idempotent producer's sequence lost) leaves the producer unusable."""
        log.warning("recreating the Kafka producer after a fatal error")
        self._producer = self._connect()

    async def ready(self) -> bool:
        return await asyncio.to_thread(kafka_ping, self.settings, 2_000)

    async def close(self) -> None:
        self._running.clear()
        if self._delivery is not None:
            await asyncio.to_thread(self._delivery.join)
        if self._producer is not None:
            producer, self._producer = self._producer, None
            await asyncio.to_thread(producer.flush, self.timeout)
