"""Idempotent writes of `history` and `recommendations` (shapes in recsys_core.documents).

FerretDB 1.24 has no transactions and answers a guarded upsert that loses with a malformed
reply, so each write is a read-modify-write: read the users' documents, compute the new ones in
Python, and replace each one only if it still carries the token (`updated_at` / `computed_at`)
we read. Users whose document changed in between (the API deleting a history entry) are read
and computed again. History is a merge (recsys_core.history), so replaying a batch rewrites the
same documents; recommendations are computed from the merged history, so they never go back.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime
from typing import Any

from pymongo import ReplaceOne
from pymongo.collection import Collection

from recsys_core.documents import GLOBAL_SCOPE, next_write_token
from recsys_core.history import BrowsingHistory, history_after
from recsys_core.realtime import RECENT_VIEWS, Scorer, Shopper
from recsys_io.mongo import BESTSELLERS, HISTORY, PRODUCTS, RECOMMENDATIONS, SIMILAR_ITEMS
from streaming.model import PromotedModel

log = logging.getLogger("recsys.stream")


class Tokens:
    """The job's write tokens (`recsys_core.documents.next_write_token`), each after the one before it."""

    def __init__(self) -> None:
        self._last: datetime | None = None
        self._lock = threading.Lock()  # the writes thread takes tokens while the next group is computed

    def next(self) -> datetime:
        with self._lock:
            self._last = next_write_token(self._last)
            return self._last


def token_after(document: Mapping[str, Any] | None, token: str, stamp: datetime) -> datetime:
    """`stamp`, or if the document already holds a token as late, one just after it.

    Every Python worker of the job draws its own tokens, and a document's shopper may be written
    from another worker (or another attempt of the same task) next: a token that did not move past
    the one it replaces could let a guard that read the older document win over the newer one.
    """
    previous = (document or {}).get(token)
    return stamp if previous is None else next_write_token(previous, now=stamp)


class Writes:
    """The store writes of a micro-batch, run one at a time in the order given on a thread of their own.

    While FerretDB stores one group of shoppers, the job computes the next group's documents
    instead of waiting for the store (figures in docs/streaming.md).
    `wait` returns once every write submitted has finished, and raises the first error.
    """

    def __init__(self) -> None:
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="recsys-stream-writes")
        self._pending: list[Future] = []

    def submit(self, write: Callable[[], None]) -> Future:
        future = self._thread.submit(write)
        self._pending.append(future)
        return future

    def wait(self) -> float:
        """Wait for every write submitted; the seconds spent waiting."""
        started = time.monotonic()
        pending, self._pending = self._pending, []
        errors = [error for error in (future.exception() for future in pending) if error is not None]
        if errors:
            raise errors[0]
        return time.monotonic() - started

    def close(self) -> None:
        self._thread.shutdown(wait=True)


def wait_all(writes: Iterable[Writes]) -> float:
    """`Writes.wait` on each, all of them before raising the first error; the seconds spent waiting."""
    waited, errors = 0.0, []
    for each in writes:
        try:
            waited += each.wait()
        except Exception as error:  # noqa: BLE001 - re-raised below, once every write is done
            errors.append(error)
    if errors:
        raise errors[0]
    return waited


# FerretDB seeks the `_id` index for `$in` and then re-checks each document against the whole
# list, so one long list costs documents x list length (figures in docs/streaming.md).
READ_CHUNK = 200


class WrittenDocuments:
    """The documents this job wrote last, by id (the most recent `size`).

    The next batch starts from them instead of reading them back: most shoppers come back within
    minutes, and reading a full history costs FerretDB about as much as writing it. The replace
    is still guarded by the stored token, so a document someone else changed meanwhile (the API
    deleting from a history, the batch layer) loses the guard and is read again. Empty after a
    restart, so a replayed batch starts from what is stored.

    Lists are kept as tuples: a tuple (and then a dict) of strings and dates drops out of
    Python's cycle collector after its first pass, while a list stays in it, and every full
    collection would walk the cached histories' millions of references (docs/streaming.md).
    """

    def __init__(self, size: int):
        self.size = size
        self._docs: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._lock = threading.Lock()  # the writes thread stores what it wrote while the next group reads

    def get_many(self, ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        with self._lock:
            return {i: self._docs[i] for i in ids if i in self._docs}

    def put_many(self, docs: Mapping[str, dict[str, Any]]) -> None:
        """Keep `docs`, their top-level lists as tuples (see above)."""
        with self._lock:
            for doc_id, doc in docs.items():
                self._docs[doc_id] = {k: tuple(v) if type(v) is list else v for k, v in doc.items()}
                self._docs.move_to_end(doc_id)
            while len(self._docs) > self.size:
                self._docs.popitem(last=False)

    def forget(self, ids: Iterable[str]) -> None:
        with self._lock:
            for doc_id in ids:
                self._docs.pop(doc_id, None)


def read_known(
    collection: Collection, ids: set[str], known: WrittenDocuments | None, projection: Mapping[str, int] | None = None
) -> dict[str, dict[str, Any]]:
    """The documents of `ids`: from what this job wrote last where it has them, else from the store."""
    cached = known.get_many(ids) if known is not None else {}
    return {**cached, **read_by_id(collection, ids - cached.keys(), projection)}


def read_by_id(
    collection: Collection, ids: Iterable[str], projection: Mapping[str, int] | None = None
) -> dict[str, dict[str, Any]]:
    ids = list(ids)
    return {
        doc["_id"]: doc
        for start in range(0, len(ids), READ_CHUNK)
        for doc in collection.find({"_id": {"$in": ids[start : start + READ_CHUNK]}}, projection)
    }


def replace_if_unchanged(
    collection: Collection, new: Mapping[str, dict[str, Any]], old: Mapping[str, dict[str, Any]], token: str
) -> set[str]:
    """Replace each `new[id]` where the stored document still has `old[id][token]`; return the ids that lost."""
    if not new:
        return set()
    operations = []
    for doc_id, document in new.items():
        previous = old.get(doc_id)
        if previous is None:
            operations.append(ReplaceOne({"_id": doc_id}, document, upsert=True))
        else:
            operations.append(ReplaceOne({"_id": doc_id, token: previous.get(token)}, document))
    result = collection.bulk_write(operations, ordered=False)
    if result.matched_count + result.upserted_count == len(operations):
        return set()
    stored = read_by_id(collection, new, {token: 1})
    lost = {doc_id for doc_id, document in new.items() if stored.get(doc_id, {}).get(token) != document[token]}
    if lost:
        log.info(
            "%s: %d documents changed while being updated; reading and merging them again", collection.name, len(lost)
        )
    return lost


def rewrite_guarded(
    collection: Collection,
    ids: Iterable[str],
    token: str,
    tokens: Tokens,
    compute: Callable[[str, dict[str, Any] | None, datetime], dict[str, Any]],
    known: WrittenDocuments | None = None,
    projection: Mapping[str, int] | None = None,
    writes: Writes | None = None,
) -> Future | None:
    """Replace the document of each id by `compute(id, old document, token value)`, guarded by `token`.

    Old documents come from what this job wrote last (`known`) on the first pass only; the ids
    whose document changed meanwhile are read from the store and computed again. `known` keeps
    the `projection` fields of what was written (the whole document without one).

    With `writes`, the first pass is computed here and the rest (writing, and any second pass)
    is submitted to `writes`: the returned future is done when the documents are stored.
    """
    wanted = set(ids)
    old = read_known(collection, wanted, known, projection)

    def store(old: dict[str, dict[str, Any]], new: dict[str, dict[str, Any]]) -> None:
        while True:
            lost = replace_if_unchanged(collection, new, old, token)
            if known is not None:
                known.put_many(
                    {
                        doc_id: doc if projection is None else {field: doc[field] for field in projection}
                        for doc_id, doc in new.items()
                        if doc_id not in lost
                    }
                )
                known.forget(lost)
            if not lost:
                return
            old = read_by_id(collection, lost, projection)
            new = computed(lost, old)

    def computed(ids: set[str], old: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        stamp = tokens.next()
        return {doc_id: compute(doc_id, old.get(doc_id), token_after(old.get(doc_id), token, stamp)) for doc_id in ids}

    new = computed(wanted, old)
    if writes is None:
        store(old, new)
        return None
    return writes.submit(lambda: store(old, new))


def update_histories(
    db,
    events_by_user: Mapping[str, list[dict[str, Any]]],
    tokens: Tokens,
    known: WrittenDocuments | None = None,
    writes: Writes | None = None,
) -> tuple[dict[str, BrowsingHistory], Future | None]:
    """Apply each user's events to their stored history: the resulting histories by user, and
    with `writes`, the future of their write (the histories are final once it is done)."""
    histories: dict[str, BrowsingHistory] = {}

    def compute(user_id: str, old: dict[str, Any] | None, updated_at: datetime) -> dict[str, Any]:
        histories[user_id] = history_after(old, events_by_user[user_id])
        return {"_id": user_id, "user_id": user_id, **histories[user_id].to_fields(), "updated_at": updated_at}

    written = rewrite_guarded(db[HISTORY], events_by_user, "updated_at", tokens, compute, known, writes=writes)
    return histories, written


class ReferenceData:
    """Products' categories, neighbour lists and bestseller lists, kept for `ttl` seconds.

    Every batch needs them for the products its shoppers viewed, and they change only when the
    catalog is written or the batch layer runs: reading them back every second cost FerretDB a
    few hundred milliseconds per batch. A change reaches the job within `ttl`; neighbour lists
    are dropped at once when another model is promoted (its neighbours replace the old ones).
    """

    MAX_ENTRIES = 200_000  # per collection; past it the table starts over
    _MISSING = object()  # no such document (remembered too, so it is not looked up every batch)

    def __init__(self, ttl: float = 0.0, clock=time.monotonic):
        """`ttl` 0 reads every lookup from the store."""
        self.ttl = ttl
        self._clock = clock
        self._tables: dict[str, dict[str, tuple[Any, float]]] = {}
        self._model_version: str | None = None

    def model_changed(self, version: str | None) -> None:
        if version != self._model_version:
            self._tables.pop(SIMILAR_ITEMS, None)
            self._model_version = version

    def lookup(self, collection: Collection, field: str, keys: set[str]) -> dict[str, Any]:
        """`field` of each key's document, for the keys that have a document."""
        now = self._clock()
        table = self._tables.setdefault(collection.name, {})
        stale = {k for k in keys if k not in table or now - table[k][1] >= self.ttl}
        if stale:
            if len(table) + len(stale) > self.MAX_ENTRIES:
                table.clear()
                stale = set(keys)
            found = read_by_id(collection, stale, {field: 1})
            for key in stale:
                table[key] = (found[key].get(field) if key in found else self._MISSING, now)
        return {k: value for k in keys if (value := table[k][0]) is not self._MISSING}


def _context(db, histories: Mapping[str, BrowsingHistory], reference: ReferenceData) -> tuple[dict, dict, dict]:
    """What scoring needs beyond the model: neighbours of recent views, categories, bestsellers."""
    recent = {pid for h in histories.values() for pid in h.product_ids()[:RECENT_VIEWS]}
    viewed = {pid for h in histories.values() for pid in h.product_ids()}
    neighbours = {pid: found or [] for pid, found in reference.lookup(db[SIMILAR_ITEMS], "neighbours", recent).items()}
    category_of = reference.lookup(db[PRODUCTS], "category_id", viewed)
    scopes = {c for c in category_of.values() if c is not None} | {GLOBAL_SCOPE}
    bestsellers = {scope: found or [] for scope, found in reference.lookup(db[BESTSELLERS], "products", scopes).items()}
    return neighbours, category_of, bestsellers


def update_recommendations(
    db,
    histories: Mapping[str, BrowsingHistory],
    newest_event: Mapping[str, datetime],
    model: PromotedModel | None,
    tokens: Tokens,
    known: WrittenDocuments | None = None,
    reference: ReferenceData | None = None,
    writes: Writes | None = None,
) -> None:
    """Recompute and store (with `writes`: submit the write of) the real-time recommendations of every user in
    `histories`.

    `known` keeps only the two fields read back here (`computed_at`, `last_event_ts`) per user;
    without `reference`, categories, neighbours and bestsellers are read from the store.
    """
    reference = reference or ReferenceData()
    reference.model_changed(model.version if model else None)
    scorer = Scorer(model.items if model else None, *_context(db, histories, reference))

    def compute(user_id: str, old: dict[str, Any] | None, computed_at: datetime) -> dict[str, Any]:
        history = histories[user_id]
        shopper = Shopper(
            recent_views=history.product_ids(),
            purchased=frozenset(history.purchased),
            user_vector=model.user_vector(user_id) if model else None,
        )
        items = scorer.recommend(shopper)
        stamps = [newest_event[user_id], (old or {}).get("last_event_ts")]
        return {
            "_id": user_id,
            "user_id": user_id,
            "items": items,
            "strategy": "realtime",
            "model_version": model.version if model else None,
            "computed_at": computed_at,
            "last_event_ts": max(s for s in stamps if s is not None),
        }

    rewrite_guarded(
        db[RECOMMENDATIONS],
        histories,
        "computed_at",
        tokens,
        compute,
        known,
        {"computed_at": 1, "last_event_ts": 1},
        writes,
    )
