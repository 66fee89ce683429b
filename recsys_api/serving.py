"""Reading the serving store: the shopper lists combined from small precomputed documents.

The rules themselves (which categories count, how lists merge, when a list is too short) live in
recsys_core.ranking; this module only fetches the documents they need, by primary key.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from recsys_api import blend
from recsys_api.params import ListQuery
from recsys_core import ranking, reasons, repeats
from recsys_core.documents import GLOBAL_SCOPE
from recsys_core.history import BrowsingHistory
from recsys_core.reasons import Reason
from recsys_io.mongo import BESTSELLERS, BUY_AGAIN, HISTORY, PRODUCTS, RECOMMENDATIONS, SIMILAR_ITEMS

PERSONALIZED = "personalized"
NON_PERSONALIZED = "non-personalized"


@dataclass(frozen=True)
class ProductList:
    """A list to serve: products in order, each one's reason (recsys_core.reasons) at the same index."""

    products: list[str]
    reasons: list[Reason]
    type: str
    strategy: str
    model_version: str | None = None
    computed_at: datetime | None = None
    experiment: str | None = None
    variant: str | None = None


def _served(
    ranked: Sequence[str], reason_of: Callable[[str], Reason], limit: int, min_size: int, exclude: Iterable[str] = ()
) -> tuple[list[str], list[Reason]]:
    """`ranking.serve` of the ranked ids, and the reasons of those served (only theirs are built)."""
    products = ranking.serve(ranked, limit, min_size, exclude)
    return products, [reason_of(p) for p in products]


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
    history = BrowsingHistory.from_document(await history_doc(db, user_id))
    viewed = ranking.shown_history(history)
    products, why = _served(viewed, lambda p: reasons.viewed(p, history.views[p]), limit, min_size)
    return ProductList(products, why, PERSONALIZED, "browsing_history")


async def scope_bestsellers(db: AsyncDatabase, scope: str) -> list[str]:
    doc = await db[BESTSELLERS].find_one({"_id": scope}, {"products": 1})
    return [entry["product_id"] for entry in (doc or {}).get("products") or ()]


async def shop_bestsellers(
    db: AsyncDatabase, scope: str, limit: int, min_size: int, exclude: Iterable[str] = ()
) -> ProductList:
    """The bestsellers of one scope (the whole shop or a category), for no shopper in particular."""
    reason = reasons.bestseller_of(scope)
    products, why = _served(await scope_bestsellers(db, scope), lambda _: reason, limit, min_size, exclude)
    strategy = "bestsellers" if scope == GLOBAL_SCOPE else "category_bestsellers"
    return ProductList(products, why, NON_PERSONALIZED, strategy)


async def bestsellers_for(
    db: AsyncDatabase,
    history: dict[str, Any],
    limit: int,
    min_size: int,
    exclude: Iterable[str] = (),
    category: str | None = None,
) -> ProductList:
    """Category bestsellers of the shopper's 3 most recently browsed categories, else the global ones.

    A shopper whose viewed products are all unknown to the catalog has no category to go by and
    gets the global list. Asked for one `category`, the bestsellers of that category (what the
    merged list would hold of it, and a list still when the shopper never browsed it).
    """
    if category is not None:
        return await shop_bestsellers(db, category, limit, min_size, exclude)
    viewed = shown_products(history)
    if viewed:
        cursor = db[PRODUCTS].find({"_id": {"$in": viewed}}, {"category_id": 1})
        category_of = {doc["_id"]: doc.get("category_id") async for doc in cursor}
        categories = ranking.browsed_categories(viewed, category_of)
        if categories:
            docs = await db[BESTSELLERS].find({"_id": {"$in": categories}}, {"products": 1}).to_list()
            lists = {d["_id"]: d.get("products") or [] for d in docs}
            merged = ranking.merge_scoped_bestsellers(lists, limit=sum(map(len, lists.values())), exclude=exclude)
            scope_of = dict(merged)
            products, why = _served(
                [p for p, _ in merged], lambda p: reasons.bestseller_of(scope_of[p]), limit, min_size
            )
            return ProductList(products, why, PERSONALIZED, "category_bestsellers")
    return await shop_bestsellers(db, GLOBAL_SCOPE, limit, min_size, exclude)


async def user_bestsellers(db: AsyncDatabase, user_id: str, query: ListQuery) -> ProductList:
    category = query.category
    history = {} if category is not None else await history_doc(db, user_id)
    return await bestsellers_for(db, history, query.limit, query.min_size, query.exclude, category)


async def _in_category(db: AsyncDatabase, product_ids: list[str], category: str) -> set[str]:
    cursor = db[PRODUCTS].find({"_id": {"$in": product_ids}, "category_id": category}, {"_id": 1})
    return {doc["_id"] async for doc in cursor}


async def _bought_again(db: AsyncDatabase, user_id: str, weight: float) -> list[str]:
    """The shopper's products to buy again (the buy_again_lists asset's), read only when they are blended in."""
    if weight <= 0:
        return []
    doc = await db[BUY_AGAIN].find_one({"_id": user_id}, {"items": 1})
    return [item["product_id"] for item in (doc or {}).get("items") or ()]


def _with_buy_again(
    again: list[str], ranked: list[str], weight: float, reason_of: Callable[[str], Reason]
) -> tuple[list[str], Callable[[str], Reason]]:
    """`ranked` with the shopper's products to buy again blended in by `weight` (recsys_core.repeats)."""
    if not again:
        return ranked, reason_of
    source = dict(repeats.blend(again, ranked, weight, k=len(again) + len(ranked)))
    return list(source), lambda p: reasons.buy_again() if source[p] == repeats.BUY_AGAIN else reason_of(p)


async def recommendations(db: AsyncDatabase, user_id: str, query: ListQuery) -> ProductList:
    """The user's precomputed recommendations; else the bestsellers strategy minus what they bought.
    Either way the shopper's buy_again list is blended in when its weight (recsys_api.blend) is above 0.

    One read when the document is there: its writers keep the shopper's purchases out of it (the
    speed layer rewrites it on every purchase; the batch layer drops what the history lists as
    bought), so the history is read only for the fallback. `exclude` and `category` narrow the
    list before the minimum size applies; too few left, the fallback is narrowed the same way.
    """
    limit, min_size, exclude, category = query.limit, query.min_size, query.exclude, query.category
    weight = await blend.buy_again_weight(db, query.buy_again_weight)
    again = await _bought_again(db, user_id, weight)
    if category is not None and again:
        in_category = await _in_category(db, again, category)
        again = [p for p in again if p in in_category]
    doc = await db[RECOMMENDATIONS].find_one(
        {"_id": user_id}, {"items": 1, "strategy": 1, "model_version": 1, "computed_at": 1}
    )
    if doc:
        strategy = doc.get("strategy") or "als"
        item_of = {item["product_id"]: item for item in doc.get("items") or ()}
        ranked = list(item_of)
        if category is not None and ranked:
            in_category = await _in_category(db, ranked, category)
            ranked = [p for p in ranked if p in in_category]
        ranked, reason_of = _with_buy_again(
            again, ranked, weight, lambda p: reasons.stored_reason(item_of[p], strategy)
        )
        products, why = _served(ranked, reason_of, limit, min_size, exclude)
        if products:
            return ProductList(products, why, PERSONALIZED, strategy, doc.get("model_version"), doc.get("computed_at"))
    history = await history_doc(db, user_id)
    bought = list(history.get("purchased") or ())
    fallback = await bestsellers_for(db, history, limit, min_size, exclude=[*bought, *exclude], category=category)
    if not again:
        return fallback
    fallback_reason = dict(zip(fallback.products, fallback.reasons, strict=True))
    ranked, reason_of = _with_buy_again(again, fallback.products, weight, fallback_reason.__getitem__)
    products, why = _served(ranked, reason_of, limit, min_size, exclude)
    return ProductList(products, why, PERSONALIZED, fallback.strategy)


async def similar_products(db: AsyncDatabase, product_id: str, limit: int, min_size: int) -> ProductList | None:
    """Neighbours of a product; None when neither neighbours nor the product itself are known."""
    doc = await db[SIMILAR_ITEMS].find_one({"_id": product_id}, {"neighbours": 1})
    if doc is None and await db[PRODUCTS].find_one({"_id": product_id}, {"_id": 1}) is None:
        return None
    neighbours = [n["product_id"] for n in (doc or {}).get("neighbours") or ()]
    reason = reasons.similar(product_id)
    products, why = _served(neighbours, lambda _: reason, limit, min_size)
    return ProductList(products, why, NON_PERSONALIZED, "similar_items")
