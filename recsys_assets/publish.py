"""Serving documents written from the Spark tasks that hold their rows: one client per task, bulk writes.

Only each task's counts reach the driver, so publishing more shoppers or products needs more
executors, not a bigger driver. This module imports no Dagster: executors load it to run the tasks.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import UTC, datetime
from functools import partial
from typing import TYPE_CHECKING

from pymongo import ReplaceOne
from pymongo.errors import DuplicateKeyError

from recsys_core.reasons import model as model_reason
from recsys_io.mongo import task_database

if TYPE_CHECKING:
    from recsys_assets.resources import MongoResource

WRITE_CHUNK = 500
# Every product of the batch's lists is the model's pick for the shopper (recsys_core.reasons).
MODEL_REASON = model_reason()


def _chunks(items: Iterator[dict], size: int) -> Iterator[list[dict]]:
    chunk: list[dict] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _write_task(rows, url: str, database: str, to_document, write) -> Iterator[tuple[int, int]]:
    """One task's documents, written WRITE_CHUNK at a time over one client: yields (written, kept)."""
    first = next(rows, None)
    if first is None:
        return
    written = kept = 0
    with task_database(url, database) as db:
        for chunk in _chunks(map(to_document, itertools.chain([first], rows)), WRITE_CHUNK):
            w, k = write(db, chunk)
            written, kept = written + w, kept + k
    yield written, kept


def write_from_executors(grouped, mongo: MongoResource, to_document, write) -> tuple[int, int]:
    """Turn each row of `grouped` into a document and write them from the tasks that hold them, in bulk.

    `write(db, documents)` answers (written, kept); only each task's two counts reach the driver.
    """
    task = partial(_write_task, url=mongo.url, database=mongo.database, to_document=to_document, write=write)
    counts = grouped.rdd.mapPartitions(task).collect()
    return sum(c[0] for c in counts), sum(c[1] for c in counts)


def ranked_lists(table, key: str, fields: tuple[str, ...]):
    """DataFrame(key, items): each key's rows as one list of `fields` structs in rank order."""
    from pyspark.sql import functions as F

    return table.groupBy(key).agg(F.sort_array(F.collect_list(F.struct("rank", *fields))).alias("items"))


def _neighbour_document(row, source: str, model_version: str | None, now: datetime) -> dict:
    return {
        "_id": row.product_id,
        "product_id": row.product_id,
        "neighbours": [{"product_id": n.neighbour_id, "score": float(n.score)} for n in row["items"]],
        "source": source,
        "model_version": model_version,
        "computed_at": now,
    }


def replace_similar_items(db, documents: list[dict]) -> tuple[int, int]:
    db.similar_items.bulk_write([ReplaceOne({"_id": d["_id"]}, d, upsert=True) for d in documents])
    return len(documents), 0


def publish_neighbours(table, mongo: MongoResource, source: str, model_version: str | None) -> int:
    """Upsert one similar_items document per product of the neighbour table."""
    to_document = partial(_neighbour_document, source=source, model_version=model_version, now=datetime.now(UTC))
    grouped = ranked_lists(table, "product_id", ("neighbour_id", "score"))
    written, _ = write_from_executors(grouped, mongo, to_document, replace_similar_items)
    return written


def write_recommendations(db, documents: list[dict], started: datetime) -> tuple[int, int]:
    """Upsert unless the stored document was computed after `started`: (written, kept fresher).

    Products the shopper's history lists as bought (purchases the speed layer saw after the
    `orders` table was built) are dropped too: the API serves these documents as they are.
    One guarded update per document: FerretDB answers a bulk write whose upsert hits a duplicate
    key without the counts pymongo needs, and the guard is what matters here.
    """
    ids = [d["_id"] for d in documents]
    fresher = {
        d["_id"] for d in db.recommendations.find({"_id": {"$in": ids}, "computed_at": {"$gte": started}}, {"_id": 1})
    }
    bought = {d["_id"]: set(d.get("purchased") or ()) for d in db.history.find({"_id": {"$in": ids}}, {"purchased": 1})}
    written = 0
    for document in documents:
        if document["_id"] in fresher:
            continue
        fields = {k: v for k, v in document.items() if k != "_id"}
        if bought.get(document["_id"]):
            fields["items"] = [i for i in fields["items"] if i["product_id"] not in bought[document["_id"]]]
        try:
            db.recommendations.update_one(
                {"_id": document["_id"], "computed_at": {"$lt": started}}, {"$set": fields}, upsert=True
            )
            written += 1
        except DuplicateKeyError:
            # The streaming layer wrote this user between our read and our write: keep its document.
            fresher.add(document["_id"])
    return written, len(fresher)


def _recommendation_document(row, model_version: str, computed_at: datetime, strategy: str) -> dict:
    return {
        "_id": row.user_id,
        "user_id": row.user_id,
        "items": [{"product_id": i.product_id, "score": float(i.score), "reason": MODEL_REASON} for i in row["items"]],
        "strategy": strategy,
        "model_version": model_version,
        "computed_at": computed_at,
        "last_event_ts": None,
    }


def publish_recommendations(
    table, mongo: MongoResource, model_version: str, started: datetime, strategy: str = "als"
) -> tuple[int, int]:
    """Write each shopper's ranked recommendations (write_recommendations' guard): (written, kept fresher).

    `strategy` is the model's family (als, ease)."""
    to_document = partial(
        _recommendation_document, model_version=model_version, computed_at=datetime.now(UTC), strategy=strategy
    )
    grouped = ranked_lists(table, "user_id", ("product_id", "score"))
    return write_from_executors(grouped, mongo, to_document, partial(write_recommendations, started=started))
