"""Producing to Kafka at volume: librdkafka's producer (confluent-kafka), for backfills and the API.

`make_producer` (kafka-python, pure Python) tops out near 10,000 records/s on a small machine,
spending most of it per record in Python; a 60-day backfill of a few hundred thousand events
wants several times that. This producer gives the same guarantees — idempotent, acks from all
in-sync replicas — and the Java client's partitioner (murmur2 of the key), which is also
kafka-python's default, so a user's events land on the same partition whichever producer sent them.
Values and keys are bytes: encode before producing."""

from __future__ import annotations

import logging
from typing import Any

from confluent_kafka import KafkaException, Producer

from recsys_core.settings import Settings
from recsys_io.kafka import _unavailable

log = logging.getLogger(__name__)
# librdkafka warns about every transient retry (e.g. a fresh broker still loading its coordinator);
# failures that matter surface as delivery errors, so only its errors are worth a reader's time.
log.setLevel(logging.ERROR)


def make_bulk_producer(settings: Settings, **overrides: Any) -> Producer:
    """A librdkafka producer for the platform's cluster; `overrides` are librdkafka properties."""
    config: dict[str, Any] = {
        "bootstrap.servers": settings.kafka_servers,
        "enable.idempotence": True,
        "acks": "all",
        "partitioner": "murmur2_random",  # Java-compatible: same partition as kafka-python for a key
        "linger.ms": 20,
        "batch.size": 1_000_000,
        "queue.buffering.max.messages": 500_000,
        # A broker that goes away fails the run within a minute instead of librdkafka's default 5.
        "message.timeout.ms": 60_000,
        "client.id": "recsys-bulk",
        "logger": log,
    }
    config.update(overrides)
    try:
        return Producer(config)
    except KafkaException as error:
        raise _unavailable(settings, error) from error
