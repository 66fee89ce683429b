"""Records the job cannot use go to `recsys.events.dlq`, with the original bytes, the reason and
where they came from, so nothing is dropped silently and a fixed record can be replayed.

DLQ record: {"reason", "errors": [{field, reason}], "source": {topic, partition, offset},
"original": text (or base64 when the bytes are not UTF-8), "encoding": "text" | "base64"}.
Keyed by "topic:partition:offset": a replayed micro-batch may send a record twice, and the key
lets a reader of the DLQ drop the repeat.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

from kafka import KafkaProducer

SEND_TIMEOUT_SECONDS = 30


@dataclass(frozen=True)
class SourceRecord:
    """One Kafka record as the stream read it."""

    topic: str
    partition: int
    offset: int
    value: bytes | None

    @property
    def coordinates(self) -> dict[str, Any]:
        return {"topic": self.topic, "partition": self.partition, "offset": self.offset}


def dead_letter(record: SourceRecord, reason: str, errors: list[dict[str, str]]) -> dict[str, Any]:
    value = record.value or b""
    try:
        original, encoding = value.decode("utf-8"), "text"
    except UnicodeDecodeError:
        original, encoding = base64.b64encode(value).decode("ascii"), "base64"
    return {
        "reason": reason,
        "errors": errors,
        "source": record.coordinates,
        "original": original,
        "encoding": encoding,
    }


def send_dead_letters(producer: KafkaProducer, topic: str, letters: list[dict[str, Any]]) -> None:
    """Send and wait for every ack: raises if any record was not stored, so the batch is retried."""
    futures = []
    for letter in letters:
        source = letter["source"]
        key = f"{source['topic']}:{source['partition']}:{source['offset']}"
        futures.append(producer.send(topic, key=key, value=letter))
    producer.flush(timeout=SEND_TIMEOUT_SECONDS)
    for future in futures:
        future.get(timeout=SEND_TIMEOUT_SECONDS)
