"""What counts as a bestseller: the window rule.

Over the `window_days` days ending at `as_of` (both ends included; orders after `as_of` do not
count, which keeps a backfill of an old day honest), a product's score is the number of distinct
users who bought it: a shopper buying the same product twice counts once. Ranked by buyers
descending, ties by product_id ascending (`recsys_core.ranking.rank_key`); a scope without sales
in the window has no list.

The batch layer counts and ranks in Spark SQL (`recsys_assets.bestsellers.bestseller_frames`), so
that the whole window's orders never pass through Python; a parity test runs both forms on the
same random order lines and requires the same lists.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from recsys_core.ranking import rank_key

# Readers merge and filter lists (purchased products, several categories): keep well over a page.
KEEP_PER_SCOPE = 100


@dataclass(frozen=True)
class OrderLine:
    user_id: str
    product_id: str
    ts: datetime
    category_id: str | None = None


def window_start(as_of: datetime, window_days: int) -> datetime:
    return as_of - timedelta(days=window_days)


def in_window(ts: datetime, as_of: datetime, window_days: int) -> bool:
    return window_start(as_of, window_days) <= ts <= as_of


def rank_bestsellers(
    lines: Iterable[OrderLine], as_of: datetime, window_days: int, limit: int = KEEP_PER_SCOPE
) -> list[dict[str, object]]:
    """[{product_id, buyers}] for one scope, ranked."""
    buyers: dict[str, set[str]] = defaultdict(set)
    for line in lines:
        if in_window(line.ts, as_of, window_days):
            buyers[line.product_id].add(line.user_id)
    ranked = sorted(({"product_id": p, "buyers": len(u)} for p, u in buyers.items()), key=rank_key)
    return ranked[:limit]


def category_bestsellers(
    lines: Iterable[OrderLine], as_of: datetime, window_days: int, limit: int = KEEP_PER_SCOPE
) -> dict[str, list[dict[str, object]]]:
    """category_id -> ranked list, for the categories with sales in the window; lines of products
    without a category count only globally."""
    by_category: dict[str, list[OrderLine]] = defaultdict(list)
    for line in lines:
        if line.category_id is not None and in_window(line.ts, as_of, window_days):
            by_category[line.category_id].append(line)
    return {
        category: rank_bestsellers(group, as_of, window_days, limit) for category, group in sorted(by_category.items())
    }


def as_documents(
    ranked: Mapping[str, list[dict[str, object]]], window_days: int, computed_at: datetime
) -> list[dict[str, object]]:
    """Serving documents of the `bestsellers` collection, one per scope."""
    return [
        {"_id": scope, "scope": scope, "window_days": window_days, "computed_at": computed_at, "products": products}
        for scope, products in ranked.items()
    ]
