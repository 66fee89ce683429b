"""Erasing a shopper: the event every layer honours, and the record of erasures that keeps no id.

`DELETE /v1/users/{user_id}` and `recsys erase USER` publish a `user_erasure` event, then delete
the shopper's serving documents. Each layer then deletes what it holds of the shopper older than
the erasure (`erased_before`): the streaming job drops their late-arriving older events, the
batch layer deletes their rows from the lake and the model files.

The platform remembers who was erased without keeping who: an erasure is recorded by the
SHA-256 of the shopper's id (`user_hash`) with the erasure's time, in the serving store's
`erasures` collection and the lake's `erasures` table. A shopper's events after the
erasure are kept: the same id coming back is a new shopper.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, date, datetime
from typing import Any

from recsys_core.events import USER_ERASURE, format_ts, parse_event

# What the batch layer's next runs remove (the serving documents go at once): the `pending`
# answer of an erasure, in the order the runs reach them.
PENDING = (
    "events_landing",
    "raw_events",
    "quarantined_events",
    "orders",
    "interactions",
    "impressions",
    "clicks",
    "attributed_orders",
    "user_recommendations",
    "model files",
)


def user_hash(user_id: str) -> str:
    """The key an erasure is recorded by: SHA-256 of the canonical (trimmed) id, lowercase hex.

    Spark's `sha2(user_id, 256)` gives the same text, which the batch layer matches rows with.
    """
    return hashlib.sha256(user_id.encode("utf-8")).hexdigest()


def erased_before(event_ts: datetime | None, erased_at: datetime | None) -> bool:
    """Whether an event of an erased shopper goes: timed at or before their erasure (the erasure
    event itself names them too), or with no readable time. An event after the erasure, or of a
    shopper never erased, stays."""
    if erased_at is None:
        return False
    return event_ts is None or event_ts <= erased_at


def user_erasure_event(user_id: str, now: datetime | None = None, *, first_day: date) -> dict[str, Any]:
    """The canonical `user_erasure` event (InvalidEvent naming `user_id` for a blank or long id)."""
    now = now or datetime.now(UTC)
    return parse_event(
        {"type": USER_ERASURE, "user_id": user_id, "ts": format_ts(now)}, now, first_day=first_day, allow_internal=True
    )


def erasure_answer(user_id: str, erased: list[str]) -> dict[str, Any]:
    """What an erasure answers: the serving collections emptied of the shopper now, and what the
    next batch runs remove."""
    return {"user_id": user_id, "erased": erased, "pending": list(PENDING)}
