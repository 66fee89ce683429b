"""The one way to reach Kafka: producer, consumer and admin factories, topic creation, a ping."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic
from kafka.errors import KafkaError, TopicAlreadyExistsError
from kafka.serializer import Deserializer, Serializer

from recsys_core.errors import ServerUnavailable
from recsys_core.settings import Settings

log = logging.getLogger(__name__)


def json_bytes(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), default=str).encode()


class KeySerde(Serializer, Deserializer):
    """Keys are user or product ids: UTF-8 strings."""

    def serialize(self, topic, headers, data):
        return data if data is None or isinstance(data, bytes) else str(data).encode()

    def deserialize(self, topic, headers, data):
        return None if data is None else data.decode(errors="replace")


class JsonSerde(Serializer, Deserializer):
    """Values are compact JSON; bytes pass through untouched (e.g. a record forwarded to the DLQ)."""

    def serialize(self, topic, headers, data):
        return data if isinstance(data, bytes) else json_bytes(data)

    def deserialize(self, topic, headers, data):
        return None if data is None else json.loads(data)


def _unavailable(settings: Settings, error: Exception) -> ServerUnavailable:
    hint = "start it with `recsys stack up`" if settings.kafka_is_local else "check RECSYS_KAFKA_BOOTSTRAP"
    return ServerUnavailable("Kafka", settings.kafka_servers, f"{hint} ({error})")


def make_producer(settings: Settings, **overrides: Any) -> KafkaProducer:
    """Idempotent producer, acks from all in-sync replicas, JSON values, string keys."""
    config: dict[str, Any] = dict(
        bootstrap_servers=settings.kafka_servers.split(","),
        acks="all",
        enable_idempotence=True,
        linger_ms=5,
        key_serializer=KeySerde(),
        value_serializer=JsonSerde(),
        request_timeout_ms=10_000,
        max_block_ms=10_000,
        client_id="recsys",
    )
    config.update(overrides)
    try:
        return KafkaProducer(**config)
    except KafkaError as error:
        raise _unavailable(settings, error) from error


def send_and_wait(settings: Settings, topic: str, key: str, value: Any, timeout_seconds: float = 10) -> None:
    """Produce one record and wait until Kafka acknowledged it (ServerUnavailable when it did not)."""
    producer = make_producer(settings)
    try:
        producer.send(topic, key=key, value=value).get(timeout=timeout_seconds)
    except KafkaError as error:
        raise _unavailable(settings, error) from error
    finally:
        producer.close()


def make_consumer(settings: Settings, *topics: str, group_id: str | None, **overrides: Any) -> KafkaConsumer:
    """JSON consumer; offsets are committed by the caller (enable_auto_commit off by default)."""
    config: dict[str, Any] = dict(
        bootstrap_servers=settings.kafka_servers.split(","),
        group_id=group_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        value_deserializer=JsonSerde(),
        key_deserializer=KeySerde(),
        consumer_timeout_ms=10_000,
        client_id="recsys",
    )
    config.update(overrides)
    try:
        return KafkaConsumer(*topics, **config)
    except KafkaError as error:
        raise _unavailable(settings, error) from error


def make_admin(settings: Settings, timeout_ms: int = 10_000) -> KafkaAdminClient:
    try:
        return KafkaAdminClient(
            bootstrap_servers=settings.kafka_servers.split(","), client_id="recsys-admin", request_timeout_ms=timeout_ms
        )
    except KafkaError as error:
        raise _unavailable(settings, error) from error


def platform_topics(settings: Settings) -> list[NewTopic]:
    topics = settings.topics
    return [
        NewTopic(topics.events, num_partitions=settings.events_partitions, replication_factor=1),
        # The catalog is a changelog of products: compaction keeps the latest version of each.
        NewTopic(topics.catalog, num_partitions=1, replication_factor=1, topic_configs={"cleanup.policy": "compact"}),
        NewTopic(topics.dlq, num_partitions=1, replication_factor=1),
    ]


def ensure_topics(settings: Settings, topics: Iterable[NewTopic] | None = None) -> list[str]:
    """Create the platform's topics if missing; returns the names created now."""
    admin = make_admin(settings)
    try:
        existing = set(admin.list_topics())
        wanted = [t for t in (topics or platform_topics(settings)) if t.name not in existing]
        created = []
        for topic in wanted:
            try:
                admin.create_topics([topic])
                created.append(topic.name)
            except TopicAlreadyExistsError:
                pass
        return created
    finally:
        admin.close()


def kafka_ping(settings: Settings, timeout_ms: int = 3_000) -> bool:
    """A metadata request answered by the cluster."""
    try:
        admin = KafkaAdminClient(
            bootstrap_servers=settings.kafka_servers.split(","),
            client_id="recsys-ping",
            request_timeout_ms=timeout_ms,
            bootstrap_timeout_ms=timeout_ms,
        )
    except Exception:  # noqa: BLE001 - any failure to connect means "not answering"
        return False
    try:
        admin.list_topics()
        return True
    except Exception:  # noqa: BLE001
        return False
    finally:
        admin.close()


def end_offsets(settings: Settings, topic: str) -> dict[int, int]:
    """The offset the next record of each partition of `topic` will get."""
    consumer = make_consumer(settings, group_id=None)
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        return {tp.partition: offset for tp, offset in consumer.end_offsets(partitions).items()}
    except KafkaError as error:
        raise _unavailable(settings, error) from error
    finally:
        consumer.close()


def record_times(settings: Settings, topic: str, positions: Mapping[int, int]) -> dict[int, datetime]:
    """The Kafka timestamp of the record at each (partition: offset), or of the first one kept after it."""
    # Raw bytes: the record may be anything a producer sent.
    consumer = make_consumer(settings, group_id=None, value_deserializer=None, key_deserializer=None)
    found: dict[int, datetime] = {}
    try:
        for partition, offset in positions.items():
            tp = TopicPartition(topic, partition)
            consumer.assign([tp])
            consumer.seek(tp, offset)
            for _ in range(5):  # the first polls may return before the fetch does
                batch = consumer.poll(timeout_ms=2_000, max_records=1).get(tp)
                if batch:
                    found[partition] = datetime.fromtimestamp(batch[0].timestamp / 1000, UTC)
                    break
        return found
    except KafkaError as error:
        raise _unavailable(settings, error) from error
    finally:
        consumer.close()
