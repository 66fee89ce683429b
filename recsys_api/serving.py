"""Reading the serving store: the shopper lists combined from small precomputed documents.

The rules themselves (which categories count, how lists merge, when a list is too short) live in
recsys_core.ranking; this module only fetches the documents they need, by primary key.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from recsys_core import ranking
from recsys_core.documents import GLOBAL_SCOPE
from recsys_core.history import BrowsingHistory
from recsys_io.mongo import BESTSELLERS, HISTORY, PRODUCTS, RECOMMENDATIONS, SIMILAR_ITEMS

PERSONALIZED = "personalized"
NON_PERSONALIZED = "non-personalized"


@dataclass(frozen=True)
class ProductList:
    products: list[str]
    type: str
    strategy: str
    model_version: str | None = None
    computed_at: datetime | None = None


async def history_doc(db: AsyncDatabase, user_id: str) -> dict[str, Any]:
    # `items`: the views of a document in the earlier shape (recsys_core.history reads both).
    fields = {
        "product_ids": 1,
        "viewed_at": 1,
        "viewed_seq": 1,
        "items": 1,
        "deleted": 1,
        "deleted_seq": 1,
        "purchased": 1,
    }
    return await db[HISTORY].find_one({"_id": user_id}, fields) or {}


def shown_products(history: dict[str, Any]) -> list[str]:
    """The products of a `history` document the shopper is shown, newest first (recsys_core.ranking)."""
    return ranking.shown_history(BrowsingHistory.from_document(history))


async def recent_history(db: AsyncDatabase, user_id: str, limit: int, min_size: int) -> ProductList:
    viewed = shown_products(await history_doc(db, user_id))
    return ProductList(ranking.serve(viewed, limit, min_size), PERSONALIZED, "browsing_history")


async def scope_bestsellers(db: AsyncDatabase, scope: str) -> list[str]:
    doc = await db[BESTSELLERS].find_one({"_id": scope}, {"products": 1})
    return [entry["product_id"] for entry in (doc or {}).get("products") or ()]


async def bestsellers_for(
    db: AsyncDatabase, history: dict[str, Any], limit: int, min_size: int, exclude: list[str] | tuple[str, ...] = ()
) -> ProductList:
    """Category bestsellers of the shopper's 3 most recently browsed categories, else the global ones.

    A shopper whose viewed products are all unknown to the catalog has no category to go by and
    gets the global list.
    """
    viewed = shown_products(history)
    if viewed:
        cursor = db[PRODUCTS].find({"_id": {"$in": viewed}}, {"category_id": 1})
        category_of = {doc["_id"]: doc.get("category_id") async for doc in cursor}
        categories = ranking.browsed_categories(viewed, category_of)
        if categories:
            docs = await db[BESTSELLERS].find({"_id": {"$in": categories}}, {"products": 1}).to_list()
            lists = [d.get("products") or [] for d in docs]
            merged = ranking.merge_bestsellers(lists, limit=sum(map(len, lists)), exclude=exclude)
            return ProductList(ranking.serve(merged, limit, min_size), PERSONALIZED, "category_bestsellers")
    products = await scope_bestsellers(db, GLOBAL_SCOPE)
    return ProductList(ranking.serve(products, limit, min_size, exclude), NON_PERSONALIZED, "bestsellers")


async def user_bestsellers(db: AsyncDatabase, user_id: str, limit: int, min_size: int) -> ProductList:
    return await bestsellers_for(db, await history_doc(db, user_id), limit, min_size)


async def recommendations(db: AsyncDatabase, user_id: str, limit: int, min_size: int) -> ProductList:
    """The user's precomputed recommendations; else the bestsellers strategy minus what they bought.

    One read when the document is there: its writers keep the shopper's purchases out of it (the
    speed layer rewrites it on every purchase; the batch layer drops what the history lists as
    bought), so the history is read only for the fallback.
    """
    doc = await db[RECOMMENDATIONS].find_one(
        {"_id": user_id}, {"items": 1, "strategy": 1, "model_version": 1, "computed_at": 1}
    )
    if doc:
        ranked = [item["product_id"] for item in doc.get("items") or ()]
        products = ranking.serve(ranked, limit, min_size)
        if products:
            return ProductList(
                products, PERSONALIZED, doc.get("strategy") or "als", doc.get("model_version"), doc.get("computed_at")
            )
    history = await history_doc(db, user_id)
    return await bestsellers_for(db, history, limit, min_size, exclude=list(history.get("purchased") or ()))


async def similar_products(db: AsyncDatabase, product_id: str, limit: int, min_size: int) -> list[str] | None:
    """Neighbours of a product; None when neither neighbours nor the product itself are known."""
    doc = await db[SIMILAR_ITEMS].find_one({"_id": product_id}, {"neighbours": 1})
    if doc is None and await db[PRODUCTS].find_one({"_id": product_id}, {"_id": 1}) is None:
        return None
    neighbours = [n["product_id"] for n in (doc or {}).get("neighbours") or ()]
    return ranking.serve(neighbours, limit, min_size)
