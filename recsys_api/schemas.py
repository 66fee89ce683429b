"""Bodies the API answers with (msgspec Structs: encoded without an intermediate dict) and documents."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec

from recsys_core.catalog import MAX_CATALOG_BATCH, MAX_DESCRIPTION_LENGTH, MAX_NAME_LENGTH
from recsys_core.events import MAX_BATCH, MAX_ID_LENGTH

ListType = Literal["personalized", "non-personalized"]


class ErrorDetail(msgspec.Struct):
    code: str
    message: str
    details: Any = None


class ErrorBody(msgspec.Struct):
    """Every failure, whatever the route: `{"error": {"code", "message", "details"}}`."""

    error: ErrorDetail


class Reason(msgspec.Struct, omit_defaults=True):
    """Why a product is in the list (recsys_core.reasons): `kind` is viewed, model,
    category_bestseller, bestseller or similar; the fields that kind names come with it."""

    kind: str
    product_id: str | None = None
    category_id: str | None = None
    viewed_at: datetime | None = None


class ListItem(msgspec.Struct):
    product_id: str
    reason: Reason


class UserProducts(msgspec.Struct, omit_defaults=True):
    """A list for one shopper; `model_version` and `computed_at` only when personalised by a model.

    `rec_id` names this one answer (clicks on it send it back); `items` are `products` with reasons.
    """

    user_id: str
    rec_id: str
    products: list[str]
    items: list[ListItem]
    type: ListType
    strategy: str
    model_version: str | None = None
    computed_at: datetime | None = None
    experiment: str | None = None
    variant: str | None = None


class ScopeProducts(msgspec.Struct):
    """Bestsellers of the whole shop (`scope` "global") or of one category (`scope` = category id)."""

    scope: str
    rec_id: str
    products: list[str]
    items: list[ListItem]
    type: ListType
    strategy: str


class SimilarProducts(msgspec.Struct):
    product_id: str
    rec_id: str
    products: list[str]
    items: list[ListItem]
    type: ListType
    strategy: str


class CompatProducts(msgspec.Struct, rename={"user_id": "user-id"}):
    """The answer shape existing clients of such engines expect (`user-id` with a hyphen), plus
    `rec_id` and `items` as every list has."""

    user_id: str
    rec_id: str
    products: list[str]
    items: list[ListItem]
    type: ListType


class EventsAccepted(msgspec.Struct):
    accepted: int
    event_ids: list[str]


class UserErased(msgspec.Struct):
    user_id: str
    erased: list[str]  # serving collections that held a document of the shopper, now deleted
    pending: list[str]  # what the batch layer's next runs remove (recsys_core.erasure.PENDING)


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


# --- request bodies, for the schema only: handlers validate with recsys_core's parsers ------------
Id = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_ID_LENGTH)]
Timestamp = Annotated[
    str,
    msgspec.Meta(
        description="ISO-8601 with a zone; default now; at most 5 minutes ahead and not before RECSYS_EVENTS_START_DATE"
    ),
]
EventId = Annotated[str, msgspec.Meta(description="UUID; generated when absent; the same id twice is one event")]
Quantity = Annotated[int, msgspec.Meta(ge=1)]


class _Event(msgspec.Struct, tag_field="type", kw_only=True):
    user_id: Id
    event_id: EventId | None = None
    ts: Timestamp | None = None


class ProductView(_Event, tag="product_view"):
    product_id: Id
    source: str | None = None


class AddToCart(_Event, tag="add_to_cart"):
    product_id: Id
    quantity: Quantity


class Click(_Event, tag="click"):
    """A product clicked in a served list: `rec_id` is the list's (an unknown one is still a click)."""

    product_id: Id
    rec_id: Id


class PurchaseItem(msgspec.Struct):
    product_id: Id
    quantity: Quantity
    price: Annotated[float, msgspec.Meta(ge=0)] | None = None


class Purchase(_Event, tag="purchase"):
    order_id: Id
    items: Annotated[list[PurchaseItem], msgspec.Meta(min_length=1)]


class Rating(_Event, tag="rating"):
    product_id: Id
    score: Annotated[float, msgspec.Meta(ge=0.5, le=5, multiple_of=0.5)]


class ClickstreamProperties(msgspec.Struct):
    productid: Id


class ClickstreamContext(msgspec.Struct):
    source: str | None = None


class ClickstreamView(msgspec.Struct):
    """The clickstream format of existing replay producers, normalised to product_view."""

    event: Literal["ProductView"]
    userid: Id
    properties: ClickstreamProperties
    messageid: str | None = None
    context: ClickstreamContext | None = None
    timestamp: Annotated[str | float, msgspec.Meta(description="epoch seconds or ISO-8601")] | None = None


class CatalogItem(msgspec.Struct):
    product_id: Id
    category_id: Id
    name: Annotated[str, msgspec.Meta(max_length=MAX_NAME_LENGTH)] | None = None
    description: Annotated[str, msgspec.Meta(max_length=MAX_DESCRIPTION_LENGTH)] | None = None
    price: Annotated[float, msgspec.Meta(ge=0)] | None = None
    attributes: dict[str, Any] | None = None


def inline_schema(annotation: Any) -> dict[str, Any]:
    """The JSON schema of a type with its definitions inlined, to describe a body the handler parses itself."""
    schema = msgspec.json.schema(annotation)
    definitions = schema.pop("$defs", {})

    def resolve(node: Any) -> Any:
        if isinstance(node, dict):
            if "$ref" in node:
                return resolve(definitions[node["$ref"].rsplit("/", 1)[-1]])
            return {key: resolve(value) for key, value in node.items()}
        if isinstance(node, list):
            return [resolve(value) for value in node]
        return node

    return resolve(schema)


def events_body_schema() -> dict[str, Any]:
    """One event of any kind, or {"events": [1 to MAX_BATCH of them]}."""
    one = [inline_schema(kind) for kind in (ProductView, AddToCart, Purchase, Rating, Click, ClickstreamView)]
    batch = {
        "title": "EventBatch",
        "type": "object",
        "required": ["events"],
        "properties": {"events": {"type": "array", "minItems": 1, "maxItems": MAX_BATCH, "items": {"anyOf": one}}},
    }
    return {"anyOf": [*one, batch]}


def catalog_body_schema() -> dict[str, Any]:
    return {"type": "array", "minItems": 1, "maxItems": MAX_CATALOG_BATCH, "items": inline_schema(CatalogItem)}


class ExperimentVariant(msgspec.Struct, omit_defaults=True):
    name: str
    share: float
    strategy: str | None = None
    model_version: str | None = None


class VariantResult(msgspec.Struct):
    variant: str
    shoppers: int
    lists: int
    clicks: int
    ctr: float
    orders: int
    conversion: float
    ctr_difference: float | None
    ctr_interval: list[float] | None
    p_value: float | None


class ExperimentView(msgspec.Struct):
    """An experiment's definition, whether it runs, and its latest results (an empty list until the
    results asset has computed some)."""

    name: str
    surface: str
    variants: list[ExperimentVariant]
    starts_at: datetime
    ends_at: datetime | None
    status: str
    results: list[VariantResult] = msgspec.field(default_factory=list)
    decision: str = "no data yet"


class ExperimentList(msgspec.Struct):
    experiments: list[ExperimentView]


class OnlineMetricsRow(msgspec.Struct):
    """What one group of served lists achieved on one day (recsys_core.online_metrics)."""

    day: str
    surface: str | None
    strategy: str | None
    model_version: str | None
    experiment: str | None
    variant: str | None
    lists: int
    products_shown: int
    clicks: int
    ctr: float
    orders: int
    conversion: float
    revenue: float
    coverage: float


class OnlineMetrics(msgspec.Struct):
    rows: list[OnlineMetricsRow]
