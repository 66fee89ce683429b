"""What a feed sent: events by type, distinct users and products, time span and rate."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any


@dataclass
class EventTally:
    by_type: Counter[str] = field(default_factory=Counter)
    users: set[str] = field(default_factory=set)
    products: set[str] = field(default_factory=set)
    first_ts: str | None = None
    last_ts: str | None = None
    invalid: int = 0  # lines a replay skipped
    started: float = field(default_factory=time.monotonic)
    finished: float | None = None

    def add(self, event: dict[str, Any]) -> None:
        self.by_type[event["type"]] += 1
        self.users.add(event["user_id"])
        if "product_id" in event:
            self.products.add(event["product_id"])
        else:
            self.products.update(item["product_id"] for item in event.get("items", ()))
        ts = event["ts"]
        # Canonical timestamps sort as text.
        if self.first_ts is None or ts < self.first_ts:
            self.first_ts = ts
        if self.last_ts is None or ts > self.last_ts:
            self.last_ts = ts

    def merge(self, other: EventTally) -> None:
        """Add what another feed (e.g. another process) sent."""
        self.by_type.update(other.by_type)
        self.users |= other.users
        self.products |= other.products
        self.invalid += other.invalid
        stamps = [ts for ts in (self.first_ts, self.last_ts, other.first_ts, other.last_ts) if ts]
        if stamps:
            self.first_ts, self.last_ts = min(stamps), max(stamps)

    @property
    def events(self) -> int:
        return sum(self.by_type.values())

    @property
    def elapsed(self) -> float:
        return (self.finished or time.monotonic()) - self.started

    @property
    def rate(self) -> float:
        return self.events / self.elapsed if self.elapsed > 0 else 0.0

    def finish(self) -> EventTally:
        self.finished = time.monotonic()
        return self

    def summary(self) -> str:
        """A few lines for a person: what was sent, by whom, over what time, how fast."""
        types = ", ".join(f"{name} {count:,}" for name, count in sorted(self.by_type.items()))
        lines = [
            f"sent {self.events:,} events in {self.elapsed:.1f}s ({self.rate:,.0f} events/s)",
            f"  by type: {types or 'none'}",
            f"  users: {len(self.users):,}  products: {len(self.products):,}",
        ]
        if self.first_ts:
            lines.append(f"  time span: {self.first_ts} .. {self.last_ts}")
        if self.invalid:
            lines.append(f"  invalid lines skipped: {self.invalid:,}")
        return "\n".join(lines)
