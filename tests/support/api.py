"""Shared helpers of the API tests: an app on the test stack, seeding documents, reading Kafka back."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

from kafka import TopicPartition
from litestar.testing import TestClient

from recsys_api.app import create_app
from recsys_core.settings import Settings
from recsys_io.kafka import make_consumer

NOW = datetime.now(UTC).replace(microsecond=0)


def metric(text: str, series: str) -> float:
    """One series' value in a /metrics answer: `name` or `name{label="…",…}` exactly; 0 if it is absent."""
    lines = (line.rpartition(" ") for line in text.splitlines())
    return sum(float(value) for name, _, value in lines if name == series)


@contextmanager
def api_client(settings: Settings, **changes) -> Iterator[TestClient]:
    """The real app (lifespan included: Mongo client and Kafka producer) on the test stack."""
    with TestClient(create_app(dataclasses.replace(settings, **changes)), raise_server_exceptions=False) as client:
        yield client


def ago(minutes: float) -> datetime:
    return NOW - timedelta(minutes=minutes)


def history(user_id: str, product_ids: list[str], purchased: list[str] = (), deleted: dict | None = None) -> dict:
    """A history document, newest view first (recsys_core/documents.py)."""
    return {
        "_id": user_id,
        "user_id": user_id,
        "product_ids": list(product_ids),
        "viewed_at": [ago(i + 1) for i in range(len(product_ids))],
        "deleted": deleted or {},
        "purchased": list(purchased),
        "updated_at": NOW,
    }


def bestsellers(scope: str, ranked: list[tuple[str, int]]) -> dict:
    return {
        "_id": scope,
        "scope": scope,
        "window_days": 30,
        "computed_at": NOW,
        "products": [{"product_id": p, "buyers": b} for p, b in ranked],
    }


def product(product_id: str, category_id: str) -> dict:
    return {
        "_id": product_id,
        "product_id": product_id,
        "category_id": category_id,
        "name": product_id,
        "description": None,
        "price": 1.0,
        "attributes": None,
        "updated_at": NOW,
    }


def _is_impression(record) -> bool:
    return isinstance(record.value, dict) and record.value.get("type") == "impression"


class TopicReader:
    """Reads what was written to a topic after it was created (end offsets taken at creation)."""

    def __init__(self, settings: Settings, topic: str):
        self.consumer = make_consumer(settings, group_id=None, consumer_timeout_ms=2_000)
        partitions = [TopicPartition(topic, p) for p in sorted(self.consumer.partitions_for_topic(topic))]
        self.consumer.assign(partitions)
        self.consumer.seek_to_end(*partitions)
        for tp in partitions:  # resolve the lazy seek now, before anything is produced
            self.consumer.position(tp)

    def read(self, expected: int, timeout_s: float = 15, impressions: bool = False) -> list:
        """At least `expected` records, or what came within `timeout_s`; without the impressions
        the API records of every list it serves, unless `impressions`."""
        records: list = []
        deadline = datetime.now(UTC) + timedelta(seconds=timeout_s)
        while len(records) < expected and datetime.now(UTC) < deadline:
            for batch in self.consumer.poll(timeout_ms=500).values():
                records.extend(r for r in batch if impressions or not _is_impression(r))
        return records

    def close(self) -> None:
        self.consumer.close()


def untraced(body: dict) -> dict:
    """A list's body without `rec_id` and `items`, once checked they are there and name its products."""
    body = dict(body)
    rec_id, items = body.pop("rec_id"), body.pop("items")
    assert isinstance(rec_id, str) and rec_id
    assert [item["product_id"] for item in items] == body["products"]
    assert all(item["reason"]["kind"] for item in items)
    return body
