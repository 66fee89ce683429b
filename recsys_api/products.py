"""The catalog: bulk upsert (Kafka + the products collection), one product, pages, similar products."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import urlencode

import msgspec
from litestar import Controller, get, put
from litestar.params import Body, Parameter
from pymongo import UpdateOne
from pymongo.asynchronous.database import AsyncDatabase

from recsys_api import lists, serving
from recsys_api.auth import SECURITY
from recsys_api.dependencies import Reads
from recsys_api.errors import InvalidInput, NotFound, documented
from recsys_api.params import Limit, ProductId
from recsys_api.publisher import Publisher
from recsys_api.schemas import CatalogAccepted, Product, ProductPage, SimilarProducts, catalog_body_schema
from recsys_core.catalog import MAX_CATALOG_BATCH, parse_catalog
from recsys_core.events import MAX_ID_LENGTH, format_ts
from recsys_io.mongo import PRODUCTS

MAX_CATALOG_BODY = 10 * 1024 * 1024
MAX_PAGE = 500

CATALOG_BODY = Body(
    title="Catalog items",
    description=(
        f"1 to {MAX_CATALOG_BATCH:,} items [{{product_id, category_id, name?, description?, price?, "
        "attributes?}}]. Each item replaces the stored product (absent fields become null)."
    ),
    schema_extra=catalog_body_schema(),
)


def as_product(doc: dict[str, Any]) -> Product:
    # Lax: a writer other than this API (a replay, a batch job) may store a number as text.
    return msgspec.convert(doc, Product, strict=False)


async def upsert_catalog(db: AsyncDatabase, publisher: Publisher, products: list[dict[str, Any]]) -> None:
    """Kafka first (the catalog's changelog, replayable by the batch layer), then the servable copy."""
    now = datetime.now(UTC)
    await publisher.publish(
        publisher.topics.catalog,
        [(p["product_id"], msgspec.json.encode({**p, "updated_at": format_ts(now)})) for p in products],
    )
    await db[PRODUCTS].bulk_write(
        [UpdateOne({"_id": p["product_id"]}, {"$set": {**p, "updated_at": now}}, upsert=True) for p in products],
        ordered=False,
    )


class ProductsController(Controller):
    path = "/v1/products"
    tags = ["catalog"]

    @put(
        security=SECURITY,
        request_max_body_size=MAX_CATALOG_BODY,
        responses=documented(400, 401, 413, 422, 503),
        summary="Upsert catalog items (all-or-nothing)",
    )
    async def upsert(
        self, data: Annotated[list[Any], CATALOG_BODY], db: AsyncDatabase, publisher: Publisher
    ) -> CatalogAccepted:
        """Write the items to `recsys.catalog` and to the products collection, servable at once."""
        if not data or len(data) > MAX_CATALOG_BATCH:
            raise InvalidInput(
                f"send 1 to {MAX_CATALOG_BATCH:,} products per call",
                [{"field": "", "reason": f"{len(data)} products; expected 1 to {MAX_CATALOG_BATCH}"}],
            )
        products, errors = parse_catalog(data)
        if errors:
            bad = len({e["index"] for e in errors})
            raise InvalidInput(f"{bad} of {len(data)} products are invalid; nothing was written", errors)
        await upsert_catalog(db, publisher, products)
        return CatalogAccepted(upserted=len(products), product_ids=[p["product_id"] for p in products])

    @get(responses=documented(400, 503), summary="Browse the catalog")
    async def browse(
        self,
        db: AsyncDatabase,
        category: Annotated[str | None, Parameter(max_length=MAX_ID_LENGTH)] = None,
        offset: Annotated[int, Parameter(ge=0, le=1_000_000)] = 0,
        limit: Annotated[int, Parameter(ge=1, le=MAX_PAGE)] = 50,
    ) -> ProductPage:
        """Products ordered by id, optionally of one category; `next` links to the following page."""
        query = {"category_id": category} if category is not None else {}
        docs = await db[PRODUCTS].find(query).sort("_id", 1).skip(offset).limit(limit + 1).to_list()
        next_link = None
        if len(docs) > limit:
            params = {
                **({"category": category} if category is not None else {}),
                "offset": offset + limit,
                "limit": limit,
            }
            next_link = f"{self.path}?{urlencode(params)}"
        return ProductPage(products=[as_product(d) for d in docs[:limit]], next=next_link)

    @get("/{product_id:str}", responses=documented(400, 404, 503), summary="One product")
    async def product(self, product_id: ProductId, db: AsyncDatabase) -> Product:
        doc = await db[PRODUCTS].find_one({"_id": product_id})
        if doc is None:
            raise NotFound(f"no product {product_id!r} in the catalog", {"product_id": product_id})
        return as_product(doc)

    @get("/{product_id:str}/similar", responses=documented(400, 404, 503), summary="Similar products")
    async def similar(self, product_id: ProductId, reads: Reads, limit: Limit = 10) -> SimilarProducts:
        """The product's nearest neighbours, as computed by the batch layer (reason `similar`)."""
        result = await serving.similar_products(reads.db, product_id, limit, reads.settings.min_list_size)
        if result is None:
            raise NotFound(f"no product {product_id!r} in the catalog", {"product_id": product_id})
        rec_id, items = lists.shown(reads.impressions, lists.SIMILAR, None, result)
        return SimilarProducts(
            product_id=product_id,
            rec_id=rec_id,
            products=result.products,
            items=items,
            type=serving.NON_PERSONALIZED,
            strategy=result.strategy,
        )
