"""The one Mongo access layer: clients, the serving collections and their indexes, a ping.

Only features both MongoDB and FerretDB 1.24 support are used: plain CRUD, upserts with $set /
$setOnInsert / $pull, single-field and compound indexes, simple aggregation. No transactions,
change streams or pipeline-style updates.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from pymongo import ASCENDING, DESCENDING, AsyncMongoClient, MongoClient
from pymongo.errors import PyMongoError

from recsys_core.erasure import user_hash
from recsys_core.errors import ServerUnavailable
from recsys_core.settings import Settings

PRODUCTS = "products"
HISTORY = "history"
BESTSELLERS = "bestsellers"
RECOMMENDATIONS = "recommendations"
SIMILAR_ITEMS = "similar_items"
MODELS = "models"
EXPERIMENTS = "experiments"
ONLINE_METRICS = "online_metrics"
BUY_AGAIN = "buy_again"
# One document per list blended into the recommendations (`_id` "buy_again"): the weight the
# evaluation chose on the shop's orders and each weight's validation NDCG.
BLEND_WEIGHTS = "blend_weights"
ERASURES = "erasures"
# The documents of one shopper, keyed by their id: what an erasure deletes at once.
SHOPPER_COLLECTIONS = (HISTORY, RECOMMENDATIONS, BUY_AGAIN)

# Documents are keyed by their natural id in `_id` (product_id, user_id, scope, version), so
# lookups are primary-key reads and upserts need no extra unique index.
INDEXES: dict[str, list[tuple[list[tuple[str, int]], dict[str, Any]]]] = {
    PRODUCTS: [([("category_id", ASCENDING), ("_id", ASCENDING)], {"name": "category_products"})],
    MODELS: [([("promoted", DESCENDING), ("promoted_at", DESCENDING)], {"name": "current_model"})],
    ONLINE_METRICS: [([("day", ASCENDING)], {"name": "metrics_by_day"})],
}

# A socket timeout turns a server that stops answering into an error the caller retries, instead
# of a wait without end (dropping the connection cancels the stalled operation).
_CLIENT_OPTIONS: dict[str, Any] = dict(
    serverSelectionTimeoutMS=5_000, connectTimeoutMS=5_000, socketTimeoutMS=30_000, appname="recsys", tz_aware=True
)


def _unavailable(settings: Settings, error: Exception) -> ServerUnavailable:
    hint = "start it with `recsys stack up`" if settings.mongo_is_local else "check RECSYS_MONGO_URI"
    return ServerUnavailable("MongoDB", settings.mongo_url, f"{hint} ({error})")


def erasure_record(user_id: str, erased_at: datetime) -> tuple[dict[str, Any], dict[str, Any]]:
    """(filter, update) that records an erasure by the id's hash; the latest erasure of an id wins."""
    return {"_id": user_hash(user_id)}, {"$max": {"erased_at": erased_at}}


def erase_documents(db: Any, user_id: str, erased_at: datetime) -> list[str]:
    """Delete the shopper's serving documents and record the erasure; the collections that held one.

    Idempotent: the API, the CLI and the streaming job all run it for the same erasure.
    """
    erased = [name for name in SHOPPER_COLLECTIONS if db[name].delete_one({"_id": user_id}).deleted_count]
    db[ERASURES].update_one(*erasure_record(user_id, erased_at), upsert=True)
    return erased


def mongo_client(settings: Settings, **overrides: Any) -> MongoClient:
    return MongoClient(settings.mongo_url, **{**_CLIENT_OPTIONS, **overrides})


def async_mongo_client(settings: Settings, **overrides: Any) -> AsyncMongoClient:
    return AsyncMongoClient(settings.mongo_url, **{**_CLIENT_OPTIONS, **overrides})


@contextmanager
def task_database(url: str, database: str) -> Iterator[Any]:
    """The serving database for a task on an executor, which has the URL and name but no settings."""
    client = MongoClient(url, **_CLIENT_OPTIONS)
    try:
        yield client[database]
    finally:
        client.close()


def serving_db(client: MongoClient | AsyncMongoClient, settings: Settings):
    return client[settings.mongo_db]


def ensure_indexes(settings: Settings, client: MongoClient | None = None) -> None:
    own = client is None
    client = client or mongo_client(settings)
    try:
        db = serving_db(client, settings)
        for collection, indexes in INDEXES.items():
            for keys, options in indexes:
                db[collection].create_index(keys, **options)
    except PyMongoError as error:
        raise _unavailable(settings, error) from error
    finally:
        if own:
            client.close()


def mongo_ping(settings: Settings, timeout_ms: int = 3_000) -> bool:
    client = mongo_client(settings, serverSelectionTimeoutMS=timeout_ms, connectTimeoutMS=timeout_ms)
    try:
        client.admin.command("ping")
        return True
    except PyMongoError:
        return False
    finally:
        client.close()


def require_mongo(settings: Settings) -> None:
    client = mongo_client(settings)
    try:
        client.admin.command("ping")
    except PyMongoError as error:
        raise _unavailable(settings, error) from error
    finally:
        client.close()
