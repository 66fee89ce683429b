"""What the speed-layer tests share: a tiny model and catalog written the way the batch layer
writes them (recsys_core.documents), events produced to the real Kafka, and waiting for effects."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from recsys_core.events import format_ts
from recsys_core.settings import Settings
from recsys_io.kafka import make_producer
from recsys_io.mongo import BESTSELLERS, MODELS, PRODUCTS, SIMILAR_ITEMS

T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
SHOES = {f"s{i}": [1.0, 0.0, 0.1 * i] for i in range(1, 5)}
BOOKS = {f"b{i}": [0.0, 1.0, 0.1 * i] for i in range(1, 5)}


def product_ids(document) -> list[str]:
    """The products of a history or recommendations document (stored, or as the job keeps it), in order."""
    document = document or {}
    if "product_ids" in document:
        return list(document["product_ids"])
    return [entry["product_id"] for entry in document.get("items", [])]


def at(seconds: float) -> str:
    return format_ts(T0 + timedelta(seconds=seconds))


def view(user_id: str, product_id: str, seconds: float) -> dict[str, Any]:
    return {
        "event_id": str(uuid.uuid4()),
        "type": "product_view",
        "user_id": user_id,
        "product_id": product_id,
        "ts": at(seconds),
        "source": None,
    }


def delete(user_id: str, product_id: str, seconds: float) -> dict[str, Any]:
    return {
        "event_id": str(uuid.uuid4()),
        "type": "history_delete",
        "user_id": user_id,
        "product_id": product_id,
        "ts": at(seconds),
    }


def purchase(user_id: str, product_id: str, seconds: float) -> dict[str, Any]:
    return {
        "event_id": str(uuid.uuid4()),
        "type": "purchase",
        "user_id": user_id,
        "ts": at(seconds),
        "order_id": uuid.uuid4().hex,
        "items": [{"product_id": product_id, "quantity": 1, "price": 9.5}],
    }


def produce(settings: Settings, records: list[dict[str, Any] | bytes], key: str | None = None) -> None:
    """Send to recsys.events the way the API does (keyed by user), waiting for every ack."""
    producer = make_producer(settings)
    try:
        futures = [
            producer.send(
                settings.topics.events, key=key or (r.get("user_id") if isinstance(r, dict) else None), value=r
            )
            for r in records
        ]
        producer.flush()
        for future in futures:
            future.get(timeout=10)
    finally:
        producer.close()


def write_model(
    spark,
    settings: Settings,
    db,
    version: str,
    items: dict[str, list[float]],
    users: dict[str, list[float]],
    promoted_at: datetime | None = None,
) -> None:
    """Factors as Parquet under models/als/<version> and a promoted `models` document."""
    path = settings.models_dir / "als" / version
    schema = "id string, features array<float>"
    spark.createDataFrame(list(items.items()), schema).coalesce(1).write.parquet(str(path / "item_factors"))
    spark.createDataFrame(list(users.items()), schema).coalesce(1).write.parquet(str(path / "user_factors"))
    now = promoted_at or datetime.now(UTC)
    db[MODELS].insert_one(
        {
            "_id": version,
            "version": version,
            "params": {"rank": 3},
            "metrics": {},
            "checks_passed": True,
            "promoted": True,
            "promoted_at": now,
            "created_at": now,
            "path": str(path),
        }
    )


def write_catalog(
    db,
    categories: dict[str, str],
    neighbours: dict[str, list[tuple[str, float]]],
    bestsellers: dict[str, list[tuple[str, int]]],
) -> None:
    now = datetime.now(UTC)
    for pid, category in categories.items():
        db[PRODUCTS].insert_one(
            {
                "_id": pid,
                "product_id": pid,
                "category_id": category,
                "name": pid,
                "description": "",
                "price": 1.0,
                "attributes": {},
                "updated_at": now,
            }
        )
    for pid, near in neighbours.items():
        db[SIMILAR_ITEMS].insert_one(
            {
                "_id": pid,
                "product_id": pid,
                "source": "als",
                "model_version": "v1",
                "computed_at": now,
                "neighbours": [{"product_id": n, "score": s} for n, s in near],
            }
        )
    for scope, ranked in bestsellers.items():
        db[BESTSELLERS].insert_one(
            {
                "_id": scope,
                "scope": scope,
                "window_days": 30,
                "computed_at": now,
                "products": [{"product_id": p, "buyers": b} for p, b in ranked],
            }
        )


def wait_for(check: Callable[[], Any], timeout: float = 60, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def dead_letters(settings: Settings, token: str) -> list[dict[str, Any]]:
    """Every DLQ record whose original text mentions `token` (base64 originals are decoded)."""
    import base64

    from recsys_io.kafka import make_consumer

    consumer = make_consumer(settings, settings.topics.dlq, group_id=None, consumer_timeout_ms=3000)
    try:
        found = []
        for message in consumer:
            letter = message.value
            original = letter["original"]
            if letter.get("encoding") == "base64":
                original = base64.b64decode(original).decode("latin-1")
            if token in original:
                found.append(letter)
        return found
    finally:
        consumer.close()


def stable_fields(document: dict[str, Any] | None) -> str:
    """A document without its write-time fields, for comparing two runs."""
    volatile = {"updated_at", "computed_at"}
    return json.dumps({k: v for k, v in (document or {}).items() if k not in volatile}, default=str, sort_keys=True)
