"""Shapes of the serving store's documents (MongoDB database `recsys`), shared by every writer and reader.

Every document is keyed by its natural id in `_id`. Timestamps are BSON dates (aware UTC datetimes).

products         {_id: product_id, product_id, category_id, name, description, price, attributes, updated_at}
history          {_id: user_id, user_id,
                  product_ids: [product_id],         distinct products, newest view first, at most 50,
                  viewed_at: [ts],                   each one's newest view (same length and order),
                  viewed_seq: [offset],              its arrival position in the shopper's Kafka partition,
                                                     which orders views of one millisecond (-1: unknown;
                                                     absent in documents written before it was kept),
                  deleted: {product_id: ts},         last history_delete per product: older views stay out
                                                     (keys: '.' stored as U+FF0E, a leading '$' as U+FF04;
                                                     recsys_core.history.escape_key / unescape_key),
                  deleted_seq: {product_id: offset}, the arrival position of those deletes that have one,
                  purchased: [product_id],           products the user bought (recommendations skip them),
                  updated_at}
bestsellers      {_id: scope, scope: "global" | category_id, window_days, computed_at,
                  products: [{product_id, buyers}]}  ranked: buyers desc, product_id asc
recommendations  {_id: user_id, user_id, items: [{product_id, score, reason}], strategy: "als" | "ease" | "realtime",
                  model_version, computed_at, last_event_ts}
                  reason: why the writer chose the product (recsys_core.reasons; absent in documents
                  written before reasons were kept, read as the model's)
similar_items    {_id: product_id, product_id, neighbours: [{product_id, score}], source: "als" | "ease" | "content",
                  model_version, computed_at}
models           {_id: version, version, family: "als" | "ease" (absent: als), params, metrics,
                  checks_passed, promoted: bool, promoted_at, created_at, path}
                                                path: RECSYS_DATA_DIR/models/als/<version>; ALS: holding
                                                user_factors/ and item_factors/ as Parquet
                                                (columns id: string, features: array<float>), and the
                                                batch layer's own spark_model/, user_index/, item_index/;
                                                EASE: ease/weights.npy and ease/product_ids.json
                  metrics: {family, als: {precision, recall, ndcg, map, coverage, ...}, ease: {...}
                            (each family's best trial), popularity: {...}, k, split,
                            training_seconds, users, items, interactions, raw_events}
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

GLOBAL_SCOPE = "global"
HISTORY_MAX_ITEMS = 50
TOKEN_STEP = timedelta(milliseconds=1)


def next_write_token(previous: datetime | None, now: datetime | None = None) -> datetime:
    """The `updated_at` / `computed_at` a writer stores next: now, in milliseconds, and always after `previous`.

    Every guarded writer replaces a document only while it still holds the token it read, so the
    token must change with every write: BSON keeps milliseconds, and two writes within one of them
    (or a clock that stepped back) would otherwise store the same token twice.
    """
    now = now or datetime.now(UTC)
    now = now.replace(microsecond=now.microsecond // 1000 * 1000)
    return now if previous is None or now > previous else previous + TOKEN_STEP
