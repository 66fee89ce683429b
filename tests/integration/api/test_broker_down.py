"""Writes while Kafka is away: 503 with Retry-After, never a 2xx, reads unaffected (their impressions
sent once it is back), recovery after."""

from __future__ import annotations

import dataclasses
import time

import pytest
from kafka import TopicPartition

from recsys_io.kafka import ensure_topics, make_consumer
from recsys_stack.servers import KafkaServer
from tests.support.api import TopicReader, api_client, history, metric


def _wait_until_answers(server: KafkaServer, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while not server.answers():
        assert server.process.pid() is not None, server.process.log_tail()
        assert time.monotonic() < deadline, f"Kafka did not start: {server.process.log_tail()}"
        time.sleep(0.5)


@pytest.fixture
def own_kafka(settings):
    """A Kafka of this test's own (other ports, other data dir), so stopping it disturbs no other test."""
    own = dataclasses.replace(
        settings,
        kafka_port=settings.kafka_port + 4,
        kafka_controller_port=settings.kafka_port + 5,
        kafka_heap="256m",
        api_produce_timeout_seconds=2,
    )
    server = KafkaServer(own)
    server.start()
    try:
        _wait_until_answers(server)
        ensure_topics(own)
        yield own, server
    finally:
        server.process.stop()


def _view(user: str) -> dict:
    return {"type": "product_view", "user_id": user, "product_id": "p1"}


def test_events_get_503_while_the_broker_is_stopped_and_202_once_it_is_back(own_kafka, mongo_db, unique):
    own, server = own_kafka
    user = f"u-{unique}"
    with api_client(own) as client:
        assert client.post("/v1/events", json=_view(user)).status_code == 202
        server.process.stop()
        down = client.post("/v1/events", json={"events": [_view(user)] * 3})
        not_ready = client.get("/ready")
        reads = client.get(f"/v1/users/{user}/history")
        server.start()
        _wait_until_answers(server)
        reader = TopicReader(own, own.topics.events)
        deadline = time.monotonic() + 90  # librdkafka reconnects with backoff; the partition comes back first
        while (back := client.post("/v1/events", json=_view(user))).status_code != 202:
            assert back.status_code == 503 and time.monotonic() < deadline
            time.sleep(1)
        ready = client.get("/ready")
    assert down.status_code == 503 and int(down.headers["Retry-After"]) > 0
    assert down.json()["error"]["code"] == "unavailable"
    assert not_ready.status_code == 503 and not_ready.json()["error"]["details"] == {"mongo": True, "kafka": False}
    assert reads.status_code == 200
    assert ready.status_code == 200
    try:
        assert back.json()["event_ids"][0] in [r.value["event_id"] for r in reader.read(1) if r.key == user]
    finally:
        reader.close()


def test_api_starts_without_kafka_and_refuses_writes_with_503(settings, mongo_db, unique):
    nowhere = dataclasses.replace(settings, kafka_port=settings.kafka_port + 6, api_produce_timeout_seconds=1)
    mongo_db.history.insert_one(history(f"u-{unique}", ["p1"]))
    with api_client(nowhere) as client:
        started = time.monotonic()
        event = client.post("/v1/events", json=_view(f"u-{unique}"))
        elapsed = time.monotonic() - started
        catalog = client.put("/v1/products", json=[{"product_id": "p", "category_id": "c"}])
        delete = client.delete(f"/v1/users/u-{unique}/history/p1")
        erase = client.delete(f"/v1/users/u-{unique}")
        assert client.get(f"/v1/users/u-{unique}/recommendations").status_code == 200
        metrics = client.get("/metrics").text
    for response in (event, catalog, delete, erase):
        assert response.status_code == 503 and response.headers["Retry-After"]
    # The erasure's event did not reach Kafka: nothing was deleted, a retry erases.
    assert mongo_db.history.count_documents({}) == 1 and mongo_db.erasures.count_documents({}) == 0
    assert elapsed < 5
    assert f'recsys_api_produce_failures_total{{topic="{nowhere.topics.events}"}}' in metrics
    assert 'path="/v1/users/{user_id}/recommendations",status_code="200"' in metrics
    assert mongo_db.products.count_documents({}) == 0


def _impression_rec_ids(settings) -> set[str]:
    """Every impression on the events topic so far (this Kafka is the test's own)."""
    consumer = make_consumer(settings, group_id=None, consumer_timeout_ms=2_000)
    try:
        partitions = [
            TopicPartition(settings.topics.events, p) for p in consumer.partitions_for_topic(settings.topics.events)
        ]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        return {r.value["rec_id"] for r in consumer if r.value.get("type") == "impression"}
    finally:
        consumer.close()


def test_reads_answer_while_kafka_is_down_and_their_impressions_arrive_once_it_is_back(own_kafka, mongo_db, unique):
    own, server = own_kafka
    user = f"u-{unique}"
    with api_client(own) as client:
        server.process.stop()
        started = time.monotonic()
        reads = [client.get(f"/v1/users/{user}/recommendations") for _ in range(5)]
        elapsed = time.monotonic() - started
        time.sleep(own.api_produce_timeout_seconds + 2)  # librdkafka gives up on them: counted, kept to resend
        metrics = client.get("/metrics").text
        server.start()
        _wait_until_answers(server)
        rec_ids = {r.json()["rec_id"] for r in reads}
        deadline = time.monotonic() + 90
        while not rec_ids <= (arrived := _impression_rec_ids(own)):
            assert time.monotonic() < deadline, f"{len(rec_ids - arrived)} impressions never arrived"
            time.sleep(1)
    assert [r.status_code for r in reads] == [200] * 5 and elapsed < 2
    assert metric(metrics, "recsys_api_impression_failures_total") >= 5


def test_impressions_past_the_queue_are_dropped_and_counted_while_reads_answer(settings, mongo_db, unique):
    """No broker at all: the first RECSYS_API_IMPRESSION_QUEUE impressions wait in the producer, later ones drop."""
    nowhere = dataclasses.replace(settings, kafka_port=settings.kafka_port + 6, api_impression_queue=3)
    with api_client(nowhere) as client:
        before = metric(client.get("/metrics").text, "recsys_api_impressions_dropped_total")
        reads = [client.get(f"/v1/users/u-{unique}/recommendations") for _ in range(5)]
        after = metric(client.get("/metrics").text, "recsys_api_impressions_dropped_total")
    assert [r.status_code for r in reads] == [200] * 5
    assert len({r.json()["rec_id"] for r in reads}) == 5  # a dropped impression's list still has its rec_id
    assert after - before == 2
