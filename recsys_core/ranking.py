"""Ranking rules the shop cares about: which categories a shopper cares about, bestseller merges."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from recsys_core.history import BrowsingHistory

PERSONAL_CATEGORY_COUNT = 3


def browsed_categories(
    history_product_ids: Iterable[str], category_of: Mapping[str, str | None], count: int = PERSONAL_CATEGORY_COUNT
) -> list[str]:
    """The first `count` distinct categories of the history's products, most recent view first."""
    categories: list[str] = []
    for product_id in history_product_ids:
        category = category_of.get(product_id)
        if category is not None and category not in categories:
            categories.append(category)
            if len(categories) == count:
                break
    return categories


def rank_key(entry: Mapping[str, Any]) -> tuple[int, str]:
    """Bestseller order: more distinct buyers first, then product_id ascending."""
    return (-int(entry["buyers"]), str(entry["product_id"]))


def merge_bestsellers(
    lists: Sequence[Sequence[Mapping[str, Any]]], limit: int, exclude: Iterable[str] = ()
) -> list[str]:
    """Merge several ranked bestseller lists ({product_id, buyers}) into one ranked list of ids.

    A product in several lists keeps its highest buyer count (a product has one category, so
    this only matters for overlapping scopes such as global + category).
    """
    return [product_id for product_id, _ in merge_scoped_bestsellers(dict(enumerate(lists)), limit, exclude)]


def merge_scoped_bestsellers(
    lists: Mapping[Any, Sequence[Mapping[str, Any]]], limit: int, exclude: Iterable[str] = ()
) -> list[tuple[str, Any]]:
    """`merge_bestsellers` of lists by scope: (product id, the scope it ranks by) in the merged order.

    The scope is the one where the product has its highest buyer count (the first such one given).
    """
    excluded = set(exclude)
    best: dict[str, tuple[int, Any]] = {}
    for scope, entries in lists.items():
        for entry in entries:
            product_id = str(entry["product_id"])
            if product_id in excluded:
                continue
            buyers = int(entry["buyers"])
            if product_id not in best or buyers > best[product_id][0]:
                best[product_id] = (buyers, scope)
    ranked = sorted(best.items(), key=lambda kv: (-kv[1][0], kv[0]))
    return [(product_id, scope) for product_id, (_, scope) in ranked[:limit]]


def servable(products: list[str], min_list_size: int) -> list[str]:
    """A list shorter than the minimum is not worth showing: serve nothing instead."""
    return products if len(products) >= min_list_size else []


def shown_history(history: BrowsingHistory) -> list[str]:
    """The products a shopper is shown as their history: newest first, minus views at or before a deletion.

    The streaming job already drops deleted views; filtering again keeps a deletion effective
    even while a stale writer catches up.
    """
    return [product_id for product_id in history.product_ids() if history.shown(product_id)]


def serve(products: Sequence[str], limit: int, min_list_size: int, exclude: Iterable[str] = ()) -> list[str]:
    """The list a shopper sees: excluded products removed, nothing if too few remain, then the top `limit`.

    The minimum applies to what is available, not to `limit`: asking for 3 of 20 products gives 3.
    """
    excluded = set(exclude)
    available = [p for p in products if p not in excluded] if excluded else list(products)
    return servable(available, min_list_size)[:limit]
