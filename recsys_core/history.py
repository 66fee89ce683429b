"""Browsing history: how a shopper's events change what they have looked at.

The rule, applied by event time so that late or out-of-order events land where they belong:

- a product appears once, at its newest view; the list is newest first and keeps at most 50;
- a `history_delete` removes the product and keeps out every view of it at or before the delete
  (a later view brings it back);
- a purchase adds the order's products to `purchased`, which recommendations skip.

Applying is a merge (newest view per product, newest delete per product, union of purchases), so
applying the same events again gives the same history, and so does another order or batching of
them (one exception: a product trimmed off the 50 does not come back when a newer one is deleted;
the list is one shorter until the next view). That is what lets the streaming job replay a
micro-batch after a crash without counting anything twice.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from recsys_core.documents import HISTORY_MAX_ITEMS
from recsys_core.events import parse_ts

# MongoDB's advice for keys that would be paths or operators: the full-width look-alikes.
KEY_DOT = "\uff0e"
KEY_DOLLAR = "\uff04"


@dataclass
class BrowsingHistory:
    """One shopper's history: newest view per product, newest delete per product, purchases."""

    views: dict[str, datetime] = field(default_factory=dict)
    deleted: dict[str, datetime] = field(default_factory=dict)
    purchased: set[str] = field(default_factory=set)
    # `product_ids()` until the next event: the job asks for it about five times per shopper and
    # batch (trim, the stored fields, recent views, categories, scoring), two sorts of 50 views each.
    _ordered: tuple[str, ...] | None = field(default=None, init=False, repr=False, compare=False)

    @classmethod
    def from_document(cls, document: Mapping[str, Any] | None) -> BrowsingHistory:
        """Read a `history` document (see recsys_core.documents); None gives an empty history."""
        if not document:
            return cls()
        if "product_ids" in document:
            viewed = zip(document["product_ids"], document.get("viewed_at") or [], strict=True)
        else:  # the earlier shape, items: [{product_id, ts}]
            viewed = ((item["product_id"], item["ts"]) for item in document.get("items") or [])
        return cls(
            views={product_id: _as_datetime(ts) for product_id, ts in viewed},
            deleted={unescape_key(pid): _as_datetime(ts) for pid, ts in (document.get("deleted") or {}).items()},
            purchased=set(document.get("purchased") or []),
        )

    def apply(self, event: Mapping[str, Any]) -> None:
        """Apply one canonical event (recsys_core.events); types that do not touch history are ignored."""
        kind = event["type"]
        ts = _as_datetime(event["ts"])
        self._ordered = None
        if kind == "product_view":
            self._view(event["product_id"], ts)
        elif kind == "history_delete":
            product_id = event["product_id"]
            if product_id not in self.deleted or self.deleted[product_id] < ts:
                self.deleted[product_id] = ts
            if product_id in self.views and self.views[product_id] <= self.deleted[product_id]:
                del self.views[product_id]
        elif kind == "purchase":
            self.purchased.update(item["product_id"] for item in event["items"])

    def apply_all(self, events: Iterable[Mapping[str, Any]]) -> BrowsingHistory:
        for event in events:
            self.apply(event)
        self._trim()
        return self

    def _view(self, product_id: str, ts: datetime) -> None:
        deleted_at = self.deleted.get(product_id)
        if deleted_at is not None and ts <= deleted_at:
            return
        if product_id not in self.views or self.views[product_id] < ts:
            self.views[product_id] = ts

    def _trim(self) -> None:
        if len(self.views) > HISTORY_MAX_ITEMS:
            views = self.views
            self.views = {pid: views[pid] for pid in self._newest_first()}  # the same order: `_ordered` holds

    def _newest_first(self) -> tuple[str, ...]:
        if self._ordered is None:
            ordered = sorted(self.views)  # ties by product_id (the sort below is stable), no tuples built
            ordered.sort(key=self.views.__getitem__, reverse=True)
            self._ordered = tuple(ordered[:HISTORY_MAX_ITEMS])
        return self._ordered

    def items(self) -> list[tuple[str, datetime]]:
        """(product_id, ts) newest first; ties broken by product_id so the order is deterministic."""
        views = self.views
        return [(pid, views[pid]) for pid in self._newest_first()]

    def product_ids(self) -> list[str]:
        return list(self._newest_first())

    def last_event_ts(self) -> datetime | None:
        stamps = [*self.views.values(), *self.deleted.values()]
        return max(stamps) if stamps else None

    def to_fields(self) -> dict[str, Any]:
        """The history fields of the `history` document (the caller adds _id, user_id, updated_at).

        Views are two parallel arrays rather than a list of {product_id, ts}: FerretDB stores every
        embedded document with its own type schema, which makes sub-documents slower to replace and
        to read (figures in docs/streaming.md).
        """
        ordered, views = self._newest_first(), self.views
        return {
            "product_ids": list(ordered),
            "viewed_at": [views[pid] for pid in ordered],
            "deleted": {escape_key(pid): ts for pid, ts in sorted(self.deleted.items())},
            "purchased": sorted(self.purchased),
        }


def browsing_history(document: Mapping[str, Any] | None, events: Iterable[Mapping[str, Any]]) -> BrowsingHistory:
    """The history after `events`, starting from a stored `history` document (or none)."""
    return BrowsingHistory.from_document(document).apply_all(events)


def escape_key(product_id: str) -> str:
    """A product id as a document key: MongoDB keys cannot hold '.' or start with '$'."""
    key = product_id.replace(".", KEY_DOT)
    return KEY_DOLLAR + key[1:] if key.startswith("$") else key


def unescape_key(key: str) -> str:
    product_id = key.replace(KEY_DOT, ".")
    return "$" + product_id[1:] if product_id.startswith(KEY_DOLLAR) else product_id


def _as_datetime(value: datetime | str) -> datetime:
    return value if isinstance(value, datetime) else parse_ts(value)
