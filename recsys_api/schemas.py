"""Bodies the API answers with (msgspec Structs: encoded without an intermediate dict) and documents."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

import msgspec

ListType = Literal["personalized", "non-personalized"]


class ErrorDetail(msgspec.Struct):
    code: str
    message: str
    details: Any = None


class ErrorBody(msgspec.Struct):
    """Every failure, whatever the route: `{"error": {"code", "message", "details"}}`."""

    error: ErrorDetail


class UserProducts(msgspec.Struct, omit_defaults=True):
    """A list for one shopper; `model_version` and `computed_at` only when personalised by a model."""

    user_id: str
    products: list[str]
    type: ListType
    strategy: str
    model_version: str | None = None
    computed_at: datetime | None = None


class ScopeProducts(msgspec.Struct):
    """Bestsellers of the whole shop (`scope` "global") or of one category (`scope` = category id)."""

    scope: str
    products: list[str]
    type: ListType
    strategy: str


class SimilarProducts(msgspec.Struct):
    product_id: str
    products: list[str]
    type: ListType
    strategy: str


class CompatProducts(msgspec.Struct, rename={"user_id": "user-id"}):
    """The answer shape existing clients of such engines expect (`user-id` with a hyphen)."""

    user_id: str
    products: list[str]
    type: ListType


class EventsAccepted(msgspec.Struct):
    accepted: int
    event_ids: list[str]


class CatalogAccepted(msgspec.Struct):
    upserted: int
    product_ids: list[str]


class Product(msgspec.Struct):
    product_id: str
    category_id: str | None = None
    name: str | None = None
    description: str | None = None
    price: float | None = None
    attributes: dict[str, Any] | None = None
    updated_at: datetime | None = None


class ProductPage(msgspec.Struct):
    """One page of the catalog; `next` is the link to the following page, null on the last one."""

    products: list[Product]
    next: str | None


class Health(msgspec.Struct):
    status: str


class Readiness(msgspec.Struct):
    status: Literal["ready"]
    mongo: bool
    kafka: bool


# --- request bodies, for the schema: the handlers validate with recsys_core's parsers -----------
class PurchaseItem(msgspec.Struct):
    product_id: str
    quantity: int
    price: float | None = None


class EventExample(msgspec.Struct, omit_defaults=True):
    """One event. `type` decides which fields it needs:

    product_view {product_id, source?} · add_to_cart {product_id, quantity >= 1} ·
    purchase {order_id, items: [{product_id, quantity >= 1, price >= 0?}]} ·
    rating {product_id, score 0.5..5 in steps of 0.5}. `event_id` (UUID) is generated when absent;
    `ts` (ISO-8601 with zone) defaults to now and may not be more than 5 minutes ahead.
    The clickstream format `{"event": "ProductView", "messageid", "userid",
    "properties": {"productid"}, "context": {"source"}, "timestamp"?}` is accepted too.
    """

    type: Literal["product_view", "add_to_cart", "purchase", "rating"]
    user_id: str
    event_id: str | None = None
    ts: str | None = None
    product_id: str | None = None
    source: str | None = None
    quantity: int | None = None
    order_id: str | None = None
    items: list[PurchaseItem] | None = None
    score: float | None = None
