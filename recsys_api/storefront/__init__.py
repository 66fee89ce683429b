"""The storefront pages: `GET /demo`, watch a shopper's lists change as they browse, and
`GET /demo/metrics`, CTR and conversion per strategy by day, plotted from GET /v1/metrics/online.

A single server-sent HTML page with a little JavaScript; it uses the public API for everything
(views go through `POST /v1/events`) plus two small look-ups to pick a shopper and a category.
The API keys, when they are needed, are given to the page in the URL fragment
(`/demo#key=...&read=...`: the write key for views and deletes, the read key for the shopper's
lists), which browsers never send to the server.
"""

from __future__ import annotations

from pathlib import Path

import msgspec
from litestar import Controller, MediaType, get
from litestar.response import Response
from pymongo.asynchronous.database import AsyncDatabase

from recsys_api.auth import READ_SECURITY
from recsys_api.errors import documented
from recsys_io.mongo import HISTORY, PRODUCTS

PAGE = Path(__file__).with_name("demo.html").read_bytes()
METRICS_PAGE = Path(__file__).with_name("metrics.html").read_bytes()  # its chart is drawn by its own script
SAMPLE_USERS = 20


class DemoUsers(msgspec.Struct):
    users: list[str]


class DemoCategories(msgspec.Struct):
    categories: list[str]


class StorefrontController(Controller):
    path = "/demo"
    tags = ["storefront"]

    @get("/", media_type=MediaType.HTML, summary="The storefront page", include_in_schema=True)
    async def page(self) -> Response[bytes]:
        return Response(PAGE, media_type=MediaType.HTML)

    @get("/metrics", media_type=MediaType.HTML, summary="Online metrics plotted per strategy by day")
    async def metrics_page(self) -> Response[bytes]:
        return Response(METRICS_PAGE, media_type=MediaType.HTML)

    # Shoppers' ids, with who browsed last: guarded like a shopper's own data.
    @get(
        "/users",
        security=READ_SECURITY,
        responses=documented(401, 503),
        summary="Shoppers with a browsing history, to pick one on the storefront page",
    )
    async def users(self, db: AsyncDatabase) -> DemoUsers:
        cursor = db[HISTORY].find({}, {"_id": 1}).sort("updated_at", -1).limit(SAMPLE_USERS)
        return DemoUsers(users=[doc["_id"] async for doc in cursor])

    @get("/categories", summary="Catalog categories, for the storefront's category filter")
    async def categories(self, db: AsyncDatabase) -> DemoCategories:
        values = await db[PRODUCTS].distinct("category_id")
        return DemoCategories(categories=sorted(str(v) for v in values if v is not None))
