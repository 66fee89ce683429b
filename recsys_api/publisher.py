"""Writing to Kafka from async handlers: one producer per process, acknowledgements awaited off the loop.

kafka-python is synchronous, so sending and waiting for the acks runs in a worker thread with a
deadline (RECSYS_API_PRODUCE_TIMEOUT_SECONDS). The producer is created lazily: the API starts
and serves reads while Kafka is down, and writes answer 503 until it is back.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence

import anyio.to_thread
from kafka import KafkaProducer
from kafka.errors import KafkaError

from recsys_api.errors import Unavailable
from recsys_api.metrics import PRODUCE_FAILURES
from recsys_core.errors import ServerUnavailable
from recsys_core.io.kafka import kafka_ping, make_producer
from recsys_core.settings import Settings

log = logging.getLogger(__name__)

Record = tuple[str, bytes]  # (key, JSON value)


class Publisher:
    def __init__(self, settings: Settings):
        self.settings = settings
        self.timeout = settings.api_produce_timeout_seconds
        self._producer: KafkaProducer | None = None
        self._connecting = asyncio.Lock()

    def _connect(self) -> KafkaProducer:
        timeout_ms = int(self.timeout * 1000)
        # Records not acknowledged within the deadline expire instead of lingering for minutes:
        # the client was told 503 and will resend (with the same event ids).
        return make_producer(self.settings, bootstrap_timeout_ms=timeout_ms, max_block_ms=timeout_ms,
                             request_timeout_ms=timeout_ms, delivery_timeout_ms=timeout_ms + 1000,
                             client_id="recsys-api")

    async def _producer_or_unavailable(self, topic: str) -> KafkaProducer:
        if self._producer is not None:
            return self._producer
        async with self._connecting:
            if self._producer is None:
                try:
                    self._producer = await anyio.to_thread.run_sync(self._connect)
                except ServerUnavailable as error:
                    PRODUCE_FAILURES.labels(topic).inc()
                    raise Unavailable(f"Kafka is not answering; nothing was written, retry later ({error})") from None
        return self._producer

    async def start(self) -> None:
        """Connect now if Kafka answers; if not, the first write tries again."""
        try:
            self._producer = await anyio.to_thread.run_sync(self._connect)
        except ServerUnavailable as error:
            log.warning("starting without Kafka: %s", error)

    def _send_all(self, producer: KafkaProducer, topic: str, records: Sequence[Record]) -> None:
        deadline = time.monotonic() + self.timeout
        futures = [producer.send(topic, key=key, value=value) for key, value in records]
        for future in futures:
            future.get(timeout=max(0.0, deadline - time.monotonic()))

    async def publish(self, topic: str, records: Sequence[Record]) -> None:
        """Return once the broker acknowledged every record; raise Unavailable (503) otherwise."""
        producer = await self._producer_or_unavailable(topic)
        try:
            await anyio.to_thread.run_sync(self._send_all, producer, topic, records)
        except KafkaError as error:
            PRODUCE_FAILURES.labels(topic).inc()
            log.warning("Kafka did not acknowledge %d records on %s: %r", len(records), topic, error)
            raise Unavailable("Kafka did not acknowledge the write in time; retry later with the same "
                              "event ids (duplicates are dropped downstream)") from None

    async def ready(self) -> bool:
        return await anyio.to_thread.run_sync(kafka_ping, self.settings, 2_000)

    async def close(self) -> None:
        if self._producer is not None:
            producer, self._producer = self._producer, None
            await anyio.to_thread.run_sync(lambda: producer.close(timeout=self.timeout))
