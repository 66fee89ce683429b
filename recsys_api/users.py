"""A shopper's lists: browsing history (and deleting from it), bestsellers, recommendations."""

from __future__ import annotations

import msgspec
from litestar import Controller, delete, get
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from recsys_api import experiments, lists, serving
from recsys_api.auth import READ_SECURITY, SECURITY
from recsys_api.dependencies import Reads
from recsys_api.errors import Unavailable, documented
from recsys_api.impressions import Impressions
from recsys_api.params import Limit, ListQuery, ProductId, UserId
from recsys_api.publisher import Publisher
from recsys_api.schemas import UserErased, UserProducts
from recsys_core.documents import next_write_token
from recsys_core.erasure import erasure_answer, user_erasure_event
from recsys_core.events import history_delete_event, parse_ts
from recsys_core.history import history_after
from recsys_core.settings import Settings
from recsys_io.mongo import ERASURES, HISTORY, SHOPPER_COLLECTIONS, erasure_record

DELETE_ATTEMPTS = 5


def user_products(impressions: Impressions, surface: str, user_id: str, result: serving.ProductList) -> UserProducts:
    rec_id, items = lists.shown(impressions, surface, user_id, result)
    return UserProducts(
        user_id=user_id,
        rec_id=rec_id,
        products=result.products,
        items=items,
        type=result.type,
        strategy=result.strategy,
        model_version=result.model_version,
        computed_at=result.computed_at,
        experiment=result.experiment,
        variant=result.variant,
    )


async def delete_from_history(
    db: AsyncDatabase, publisher: Publisher, settings: Settings, user_id: str, product_id: str
) -> None:
    """Tell every layer first (the event), then take the product out of the served history at once.

    The history is changed by the same rule the streaming job applies (recsys_core.history), so
    `deleted.<product>` is recorded in the same write, even for a shopper with no history yet, and
    a view still on its way through the stream stays out. The write is a read-modify-write guarded
    by `updated_at`, like the streaming job's (FerretDB cannot $pull by a sub-field), retried when
    the stream wrote in between. Both steps are idempotent: a retry after a 503 is safe.
    """
    # InvalidEvent (422) for a blank id, or while the clock is before the lake's first day.
    event = history_delete_event(user_id, product_id, first_day=settings.events_first_day)
    user_id = event["user_id"]  # as the stream will see it (trimmed)
    await publisher.publish(publisher.topics.events, [(user_id, msgspec.json.encode(event))])
    for _ in range(DELETE_ATTEMPTS):
        doc = await db[HISTORY].find_one({"_id": user_id})
        # The whole document, as the stream writes it (so one in an earlier shape is rewritten).
        new = {
            "_id": user_id,
            "user_id": user_id,
            **history_after(doc, [event]).to_fields(),
            "updated_at": next_write_token(doc.get("updated_at") if doc else None),
        }
        if doc is None:
            try:
                await db[HISTORY].insert_one(new)
                return
            except DuplicateKeyError:
                continue
        result = await db[HISTORY].replace_one({"_id": user_id, "updated_at": doc.get("updated_at")}, new)
        if result.matched_count:
            return
    raise Unavailable("the history kept changing while deleting from it; retry")


async def erase_user(db: AsyncDatabase, publisher: Publisher, settings: Settings, user_id: str) -> UserErased:
    """Tell every layer first (the `user_erasure` event), then delete the serving documents at once.

    Kafka down: 503 before anything is deleted. Both steps are idempotent, so a retry is safe; the
    streaming job deletes the documents again when the event reaches it (recsys_io.mongo.erase_documents
    is the same rule, for the synchronous client).
    """
    event = user_erasure_event(user_id, first_day=settings.events_first_day)
    user_id = event["user_id"]
    await publisher.publish(publisher.topics.events, [(user_id, msgspec.json.encode(event))])
    erased = [name for name in SHOPPER_COLLECTIONS if (await db[name].delete_one({"_id": user_id})).deleted_count]
    await db[ERASURES].update_one(*erasure_record(user_id, parse_ts(event["ts"])), upsert=True)
    return UserErased(**erasure_answer(user_id, erased))


class UsersController(Controller):
    path = "/v1/users/{user_id:str}"
    tags = ["shoppers"]

    @get(
        "/history",
        security=READ_SECURITY,
        responses=documented(400, 401, 503),
        summary="Recently viewed products",
    )
    async def history(self, user_id: UserId, reads: Reads, limit: Limit = 10) -> UserProducts:
        """The last `limit` distinct products the shopper viewed, newest first ([] when fewer than
        RECSYS_MIN_LIST_SIZE); each item's reason is `viewed` with the time of its newest view."""
        result = await serving.recent_history(reads.db, user_id, limit, reads.settings.min_list_size)
        return user_products(reads.impressions, lists.HISTORY, user_id, result)

    @delete(
        "/history/{product_id:str}",
        security=SECURITY,
        responses=documented(400, 401, 503),
        summary="Delete a product from the browsing history",
    )
    async def delete_history(
        self, user_id: UserId, product_id: ProductId, db: AsyncDatabase, publisher: Publisher, settings: Settings
    ) -> None:
        """Remove every view of the product from the shopper's history at once, and record a
        `history_delete` event so no later batch or stream run brings it back. 204 also when there
        was nothing to delete."""
        await delete_from_history(db, publisher, settings, user_id, product_id)

    @delete(
        "/",
        security=SECURITY,
        status_code=202,
        responses=documented(400, 401, 422, 503),
        summary="Erase the shopper everywhere",
    )
    async def erase(self, user_id: UserId, db: AsyncDatabase, publisher: Publisher, settings: Settings) -> UserErased:
        """Delete the shopper's history, recommendations and buy-again list at once, and publish a
        `user_erasure` event: the streaming job drops their later-arriving older events, and the
        batch layer's next runs delete their rows from the lake and the model files (`pending`).
        The erasure is recorded by a hash of the id, never the id."""
        return await erase_user(db, publisher, settings, user_id)

    @get(
        "/bestsellers",
        security=READ_SECURITY,
        responses=documented(400, 401, 503),
        summary="Bestsellers for this shopper",
    )
    async def bestsellers(self, user_id: UserId, reads: Reads, list_query: ListQuery) -> UserProducts:
        """With browsing history: the bestsellers of the 3 most recently browsed categories merged
        (distinct buyers desc, product id asc), `category_bestsellers`. Without: the global
        bestsellers, non-personalized. `category`: that category's bestsellers; `exclude`: products
        left out; the minimum list size applies to what remains."""
        result = await experiments.serve(reads.db, lists.BESTSELLERS, user_id, list_query)
        return user_products(reads.impressions, lists.BESTSELLERS, user_id, result)

    @get(
        "/recommendations",
        security=READ_SECURITY,
        responses=documented(400, 401, 503),
        summary="Recommendations for this shopper",
    )
    async def recommendations(self, user_id: UserId, reads: Reads, list_query: ListQuery) -> UserProducts:
        """The shopper's precomputed recommendations minus products they bought, with
        `model_version` and `computed_at`; otherwise the bestsellers strategy. `category` keeps
        only that category's products, `exclude` leaves products out, before the minimum list
        size applies (too few left: the bestsellers strategy, narrowed the same way)."""
        result = await experiments.serve(reads.db, lists.RECOMMENDATIONS, user_id, list_query)
        return user_products(reads.impressions, lists.RECOMMENDATIONS, user_id, result)
