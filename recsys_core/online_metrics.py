"""What the served lists achieved: the online metrics of a day, and the range of days a reader asks for.

Per day x surface x strategy x model_version x experiment x variant, from impressions, clicks and
the orders attributed to a clicked list (recsys_core.attribution):

    ctr         clicks / products shown (every product of every list counts as one shown)
    conversion  attributed orders / lists served: how many lists, of those shown, ended in an order
    revenue     sum of price x quantity of the attributed order lines that carry a price
    coverage    distinct products shown / products in the catalog

A click or an order counts on its own day, with the dimensions of the list it was made in.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from recsys_core.errors import RecsysError

DIMENSIONS = ("surface", "strategy", "model_version", "experiment", "variant")
MAX_DAYS = 366


class DayRangeError(RecsysError):
    """A range of days the platform cannot answer, naming the field and why."""

    def __init__(self, field: str, reason: str):
        self.field = field
        self.reason = reason
        super().__init__(f"{field}: {reason}")


@dataclass(frozen=True)
class ListCounts:
    """What one group of served lists counted on one day."""

    lists: int
    products_shown: int
    distinct_products_shown: int
    clicks: int
    orders: int
    revenue: float


def ratio(part: float, whole: float) -> float:
    return part / whole if whole else 0.0


def metric_figures(counts: ListCounts, catalog_size: int) -> dict[str, Any]:
    """The published figures of one group (see the module's docstring)."""
    return {
        "lists": counts.lists,
        "products_shown": counts.products_shown,
        "clicks": counts.clicks,
        "ctr": ratio(counts.clicks, counts.products_shown),
        "orders": counts.orders,
        "conversion": ratio(counts.orders, counts.lists),
        "revenue": round(counts.revenue, 2),
        "coverage": ratio(counts.distinct_products_shown, catalog_size),
    }


def totals(rows: list[dict[str, Any]]) -> dict[str, float]:
    """lists, clicks, ctr, orders and conversion summed over published rows (the UI plots them per run)."""
    lists = sum(r["lists"] for r in rows)
    shown = sum(r["products_shown"] for r in rows)
    clicks = sum(r["clicks"] for r in rows)
    orders = sum(r["orders"] for r in rows)
    return {
        "lists": lists,
        "clicks": clicks,
        "ctr": ratio(clicks, shown),
        "orders": orders,
        "conversion": ratio(orders, lists),
    }


def lookback_days(window: timedelta) -> int:
    """Whole days before a day whose clicks can still own one of its purchases."""
    return -(-window // timedelta(days=1))


def _day(field: str, value: str | None) -> date:
    if not value:
        raise DayRangeError(field, "is required: a day as YYYY-MM-DD")
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise DayRangeError(field, f"{value!r} is not a day as YYYY-MM-DD") from None


def day_range(first: str | None, last: str | None) -> tuple[date, date]:
    """The days `from`..`to` of a request, both included; at most MAX_DAYS of them."""
    start, end = _day("from", first), _day("to", last)
    if end < start:
        raise DayRangeError("to", "must be on or after from")
    if (end - start).days >= MAX_DAYS:
        raise DayRangeError("to", f"at most {MAX_DAYS} days from `from`")
    return start, end
