"""Producers of the simulator's feeds: failures counted and reported, never ignored.

`Publisher` wraps the platform's producer (paced traffic, the catalog); `BulkPublisher` the
librdkafka one (the history backfill). Both are idempotent with acks from all in-sync replicas;
values are encoded once with msgspec. Closing flushes and raises if any record was not acknowledged.
"""

from __future__ import annotations

from typing import Any

import msgspec
from confluent_kafka import KafkaException
from kafka.errors import KafkaError

from recsys_core.errors import RecsysError, ServerUnavailable
from recsys_core.settings import Settings
from recsys_io.kafka import _unavailable, ensure_topics, kafka_ping, make_producer
from recsys_io.kafka_bulk import make_bulk_producer

BULK_FLUSH_SECONDS = 120.0


class DeliveryFailed(RecsysError):
    """Kafka did not acknowledge some records."""


class _Deliveries:
    """Counts records Kafka refused, without holding a future per record."""

    def __init__(self) -> None:
        self.failed = 0
        self.first_error: BaseException | None = None

    def errback(self, error: BaseException) -> None:
        self.failed += 1
        self.first_error = self.first_error or error

    def check(self, settings: Settings) -> None:
        if self.failed:
            raise DeliveryFailed(
                f"Kafka at {settings.kafka_servers} did not acknowledge {self.failed:,} "
                f"records (first error: {self.first_error}); they were not sent"
            )


def require_kafka(settings: Settings) -> None:
    """A quick answer when Kafka is down (the clients' own bootstrap waits far longer), then the topics."""
    if not kafka_ping(settings):
        raise _unavailable(settings, TimeoutError("no answer within 3s"))
    ensure_topics(settings)


class Publisher:
    """One producer for one run: sends, tracks failures, flushes and closes.

    `check` pings Kafka and creates missing topics first (skipped where the caller already did).
    """

    def __init__(self, settings: Settings, check: bool = True, **overrides: Any):
        self.settings = settings
        if check:
            require_kafka(settings)
        self.producer = self._producer(settings, **overrides)
        self.deliveries = _Deliveries()

    def _producer(self, settings: Settings, **overrides: Any) -> Any:
        return make_producer(settings, **overrides)

    def send(self, topic: str, key: str, value: dict[str, Any]) -> None:
        try:
            future = self.producer.send(topic, key=key, value=msgspec.json.encode(value))
        except KafkaError as error:
            raise ServerUnavailable("Kafka", self.settings.kafka_servers, f"sending failed ({error})") from error
        future.add_errback(self.deliveries.errback)

    def close(self) -> None:
        try:
            self.producer.flush()
        finally:
            self.producer.close()
        self.deliveries.check(self.settings)

    def __enter__(self) -> Publisher:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()


class BulkPublisher(Publisher):
    """The same contract on librdkafka, for backfills (see recsys_io/kafka_bulk.py)."""

    def _producer(self, settings: Settings, **overrides: Any) -> Any:
        return make_bulk_producer(settings, **overrides)

    def _delivered(self, error: Any, _message: Any) -> None:
        if error is not None:
            self.deliveries.errback(KafkaException(error))

    def send(self, topic: str, key: str, value: dict[str, Any]) -> None:
        payload = msgspec.json.encode(value)
        while True:
            try:
                self.producer.produce(topic, value=payload, key=key.encode(), on_delivery=self._delivered)
                break
            except BufferError:
                # The local queue is full: let librdkafka deliver (and call back) before retrying.
                self.producer.poll(0.05)
        self.producer.poll(0)

    def close(self) -> None:
        unsent = self.producer.flush(BULK_FLUSH_SECONDS)
        if unsent:
            self.deliveries.failed += unsent
            self.deliveries.first_error = self.deliveries.first_error or TimeoutError(
                f"still queued after {BULK_FLUSH_SECONDS:.0f}s"
            )
        self.deliveries.check(self.settings)
