"""Browsing history: how a shopper's events change what they have looked at.

The rule, applied by event time so that late or out-of-order events land where they belong:

- a product appears once, at its newest view; the list is newest first and keeps at most 50;
- a `history_delete` removes the product and keeps out every view of it at or before the delete
  (a later view brings it back);
- a purchase adds the order's products to `purchased`, which recommendations skip.

"Newer" is by `ts`, then by arrival: two events of one millisecond are in the order the shopper's
Kafka partition holds them (events are keyed by shopper, so its offsets are their arrival order).
The streaming job gives each event its record's offset as `seq`. An event without one (the API's
own `history_delete`, a view stored before positions were kept) is ordered by `ts` alone against
the sequenced events of its millisecond: a view as the oldest of them, a delete as the newest, so a
delete still keeps its whole millisecond out.

Applying is a merge (newest view per product, newest delete per product, union of purchases), so
applying the same events again gives the same history, and so does another order or batching of
them (one exception: a product trimmed off the 50 does not come back when a newer one is deleted;
the list is one shorter until the next view). That is what lets the streaming job replay a
micro-batch after a crash without counting anything twice.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from recsys_core.documents import HISTORY_MAX_ITEMS
from recsys_core.events import as_datetime

# MongoDB's advice for keys that would be paths or operators: the full-width look-alikes.
KEY_DOT = "\uff0e"
KEY_DOLLAR = "\uff04"
# The event field holding its arrival position (see the module's docstring), and where events
# without one stand among those of their millisecond that have one.
SEQ = "seq"
UNSEQUENCED_VIEW = -1
UNSEQUENCED_DELETE = math.inf


@dataclass
class BrowsingHistory:
    """One shopper's history: newest view per product, newest delete per product, purchases.

    `viewed_seq` holds the arrival position of every view (UNSEQUENCED_VIEW where unknown: the same
    keys as `views`, so that sorting needs no tuple per view), `deleted_seq` those of the deletes
    that have one.
    """

    views: dict[str, datetime] = field(default_factory=dict)
    deleted: dict[str, datetime] = field(default_factory=dict)
    purchased: set[str] = field(default_factory=set)
    viewed_seq: dict[str, int] = field(default_factory=dict)
    deleted_seq: dict[str, int] = field(default_factory=dict)
    # `product_ids()` until the next event: the job asks for it about five times per shopper and
    # batch (trim, the stored fields, recent views, categories, scoring), three sorts of 50 views each.
    _ordered: tuple[str, ...] | None = field(default=None, init=False, repr=False, compare=False)

    @classmethod
    def from_document(cls, document: Mapping[str, Any] | None) -> BrowsingHistory:
        """Read a `history` document (see recsys_core.documents); None gives an empty history."""
        if not document:
            return cls()
        if "product_ids" in document:
            product_ids, stamps = document["product_ids"], document.get("viewed_at") or []
        else:  # the earlier shape, items: [{product_id, ts}]
            items = document.get("items") or []
            product_ids, stamps = [item["product_id"] for item in items], [item["ts"] for item in items]
        # A document written before arrival positions were kept has no `viewed_seq`, and one whose
        # views a writer unaware of them replaced has one that no longer matches.
        seqs = document.get("viewed_seq")
        if seqs is not None and len(seqs) != len(product_ids):
            seqs = None
        return cls(
            views={product_id: as_datetime(ts) for product_id, ts in zip(product_ids, stamps, strict=True)},
            deleted={unescape_key(pid): as_datetime(ts) for pid, ts in (document.get("deleted") or {}).items()},
            purchased=set(document.get("purchased") or []),
            viewed_seq=(dict.fromkeys(product_ids, UNSEQUENCED_VIEW) if seqs is None else dict(zip(product_ids, seqs))),
            deleted_seq={unescape_key(pid): seq for pid, seq in (document.get("deleted_seq") or {}).items()},
        )

    def apply(self, event: Mapping[str, Any]) -> None:
        """Apply one canonical event (recsys_core.events); types that do not touch history are ignored."""
        kind = event["type"]
        ts = as_datetime(event["ts"])
        seq = event.get(SEQ)
        self._ordered = None
        if kind == "product_view":
            self._view(event["product_id"], ts, seq)
        elif kind == "history_delete":
            self._delete(event["product_id"], ts, seq)
        elif kind == "purchase":
            self.purchased.update(item["product_id"] for item in event["items"])

    def apply_all(self, events: Iterable[Mapping[str, Any]]) -> BrowsingHistory:
        for event in events:
            self.apply(event)
        self._trim()
        return self

    def _view(self, product_id: str, ts: datetime, seq: int | None) -> None:
        at = (ts, UNSEQUENCED_VIEW if seq is None else seq)
        if product_id in self.deleted and at <= self._deleted_at(product_id):
            return
        if product_id not in self.views or self._viewed_at(product_id) < at:
            self.views[product_id], self.viewed_seq[product_id] = at

    def _delete(self, product_id: str, ts: datetime, seq: int | None) -> None:
        at = (ts, UNSEQUENCED_DELETE if seq is None else seq)
        if product_id not in self.deleted or self._deleted_at(product_id) < at:
            self.deleted[product_id] = ts
            if seq is None:
                self.deleted_seq.pop(product_id, None)
            else:
                self.deleted_seq[product_id] = seq
        if product_id in self.views and not self.shown(product_id):
            del self.views[product_id]
            del self.viewed_seq[product_id]

    def _viewed_at(self, product_id: str) -> tuple[datetime, int]:
        return self.views[product_id], self.viewed_seq[product_id]

    def _deleted_at(self, product_id: str) -> tuple[datetime, float]:
        return self.deleted[product_id], self.deleted_seq.get(product_id, UNSEQUENCED_DELETE)

    def shown(self, product_id: str) -> bool:
        """The product's newest view is newer than its newest delete (or it was never deleted)."""
        return product_id not in self.deleted or self._viewed_at(product_id) > self._deleted_at(product_id)

    def _trim(self) -> None:
        if len(self.views) > HISTORY_MAX_ITEMS:
            views, seqs = self.views, self.viewed_seq
            kept = self._newest_first()
            self.views = {pid: views[pid] for pid in kept}  # the same order: `_ordered` holds
            self.viewed_seq = dict(zip(kept, map(seqs.__getitem__, kept)))

    def _newest_first(self) -> tuple[str, ...]:
        if self._ordered is None:
            # By time, then arrival, then product_id: stable sorts, the last one by the first key,
            # each keyed by a dict lookup (no tuple built per view).
            ordered = sorted(self.views)
            ordered.sort(key=self.viewed_seq.__getitem__, reverse=True)
            ordered.sort(key=self.views.__getitem__, reverse=True)
            self._ordered = tuple(ordered[:HISTORY_MAX_ITEMS])
        return self._ordered

    def items(self) -> list[tuple[str, datetime]]:
        """(product_id, ts) newest first, by time and then arrival; views with neither to tell them
        apart are ordered by product_id, so the order is deterministic."""
        views = self.views
        return [(pid, views[pid]) for pid in self._newest_first()]

    def product_ids(self) -> list[str]:
        return list(self._newest_first())

    def to_fields(self) -> dict[str, Any]:
        """The history fields of the `history` document (the caller adds _id, user_id, updated_at).

        Views are two parallel arrays rather than a list of {product_id, ts}: FerretDB stores every
        embedded document with its own type schema, which makes sub-documents slower to replace and
        to read (figures in docs/streaming.md).
        """
        ordered, views, seqs = self._newest_first(), self.views, self.viewed_seq
        return {
            "product_ids": list(ordered),
            "viewed_at": [views[pid] for pid in ordered],
            # Kept so that the next batch, or a replay of this one, orders views of one millisecond alike.
            "viewed_seq": list(map(seqs.__getitem__, ordered)),
            "deleted": {escape_key(pid): ts for pid, ts in sorted(self.deleted.items())},
            "deleted_seq": {escape_key(pid): self.deleted_seq[pid] for pid in sorted(self.deleted_seq)},
            "purchased": sorted(self.purchased),
        }


def history_after(document: Mapping[str, Any] | None, events: Iterable[Mapping[str, Any]]) -> BrowsingHistory:
    """The history after `events`, starting from a stored `history` document (or none)."""
    return BrowsingHistory.from_document(document).apply_all(events)


def escape_key(product_id: str) -> str:
    """A product id as a document key: MongoDB keys cannot hold '.' or start with '$'."""
    key = product_id.replace(".", KEY_DOT)
    return KEY_DOLLAR + key[1:] if key.startswith("$") else key


def unescape_key(key: str) -> str:
    product_id = key.replace(KEY_DOT, ".")
    return "$" + product_id[1:] if product_id.startswith(KEY_DOLLAR) else product_id
