"""Why a product is in a served list: a reason per product, chosen where the product was chosen.

    {"kind": "viewed", "product_id": p}                 near p, which the shopper viewed lately
    {"kind": "viewed", "product_id": p, "viewed_at": t} in the history: the shopper viewed it at t
    {"kind": "model"[, "product_id": p]}                the ALS model's pick (p: the recent view it
                                                        is most like, where the scorer knows it)
    {"kind": "category_bestseller", "category_id": c}   sells best in c, a category browsed lately
    {"kind": "bestseller"}                              sells best in the whole shop
    {"kind": "similar", "product_id": p}                a neighbour of the product p on show
    {"kind": "buy_again"}                               the shopper bought it before, and shoppers
                                                        here buy it again (recsys_core.repeats)

The writers of the serving documents store the reason beside each product; a document written
before reasons were kept is read with the reason its strategy implies (`stored_reason`).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from recsys_core.documents import GLOBAL_SCOPE
from recsys_core.repeats import BUY_AGAIN

Reason = dict[str, Any]

VIEWED = "viewed"
MODEL = "model"
CATEGORY_BESTSELLER = "category_bestseller"
BESTSELLER = "bestseller"
SIMILAR = "similar"
KINDS = (VIEWED, MODEL, CATEGORY_BESTSELLER, BESTSELLER, SIMILAR, BUY_AGAIN)


def viewed(product_id: str, viewed_at: datetime | None = None) -> Reason:
    if viewed_at is None:
        return {"kind": VIEWED, "product_id": product_id}
    return {"kind": VIEWED, "product_id": product_id, "viewed_at": viewed_at}


def model(like: str | None = None) -> Reason:
    return {"kind": MODEL} if like is None else {"kind": MODEL, "product_id": like}


def bestseller_of(scope: str) -> Reason:
    """The reason of a product taken from the bestsellers of `scope` (a category id or the global scope)."""
    if scope == GLOBAL_SCOPE:
        return {"kind": BESTSELLER}
    return {"kind": CATEGORY_BESTSELLER, "category_id": scope}


def buy_again() -> Reason:
    return {"kind": BUY_AGAIN}


def similar(product_id: str) -> Reason:
    return {"kind": SIMILAR, "product_id": product_id}


def stored_reason(item: Mapping[str, Any], strategy: str | None) -> Reason:
    """The reason of a stored recommendation item; for one stored without, what its strategy implies.

    Both writers of `recommendations` score with the model ("als": the batch; "realtime": the
    stream, which blends it with neighbours of recent views and cannot tell which won afterwards).
    """
    reason = item.get("reason")
    if isinstance(reason, Mapping) and reason.get("kind") in KINDS:
        return dict(reason)
    return model()
