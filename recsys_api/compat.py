"""Routes existing clients of such engines call: user in a `user-id` header, product in `product-id`.

Same rules as /v1/users/...; answers `{"user-id", "rec_id", "products", "items", "type"}`.
"""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, delete, get
from litestar.params import Parameter
from pymongo.asynchronous.database import AsyncDatabase

from recsys_api import lists, serving
from recsys_api.auth import READ_SECURITY, SECURITY
from recsys_api.dependencies import Reads
from recsys_api.errors import documented
from recsys_api.impressions import Impressions
from recsys_api.params import Limit, ListQuery
from recsys_api.publisher import Publisher
from recsys_api.schemas import CompatProducts
from recsys_api.users import delete_from_history
from recsys_core.events import MAX_ID_LENGTH, MAX_USER_ID_LENGTH
from recsys_core.settings import Settings

UserHeader = Annotated[
    str, Parameter(header="user-id", min_length=1, max_length=MAX_USER_ID_LENGTH, description="The shopper's id")
]
ProductHeader = Annotated[
    str,
    Parameter(
        header="product-id",
        min_length=1,
        max_length=MAX_ID_LENGTH,
        description="The product to delete from the history",
    ),
]


def compat(impressions: Impressions, surface: str, user_id: str, result: serving.ProductList) -> CompatProducts:
    rec_id, items = lists.shown(impressions, surface, user_id, result)
    return CompatProducts(user_id=user_id, rec_id=rec_id, products=result.products, items=items, type=result.type)


class CompatController(Controller):
    path = "/api/v1"
    tags = ["compatibility"]

    @get(
        "/user_nav_history_latest_products",
        security=READ_SECURITY,
        responses=documented(400, 401, 503),
        summary="Recently viewed products (user in the `user-id` header)",
    )
    async def history(self, user_id: UserHeader, reads: Reads, limit: Limit = 10) -> CompatProducts:
        result = await serving.recent_history(reads.db, user_id, limit, reads.settings.min_list_size)
        return compat(reads.impressions, lists.HISTORY, user_id, result)

    @delete(
        "/user_nav_history_latest_products",
        security=SECURITY,
        responses=documented(400, 401, 503),
        summary="Delete a product (`product-id` header) from a history (`user-id` header)",
    )
    async def delete_history(
        self,
        user_id: UserHeader,
        product_id: ProductHeader,
        db: AsyncDatabase,
        publisher: Publisher,
        settings: Settings,
    ) -> None:
        await delete_from_history(db, publisher, settings, user_id, product_id)

    @get(
        "/user_history_recommendations",
        security=READ_SECURITY,
        responses=documented(400, 401, 503),
        summary="Bestsellers for the shopper in the `user-id` header",
    )
    async def recommendations(self, user_id: UserHeader, reads: Reads, limit: Limit = 10) -> CompatProducts:
        result = await serving.user_bestsellers(reads.db, user_id, ListQuery(limit, reads.settings.min_list_size))
        return compat(reads.impressions, lists.BESTSELLERS, user_id, result)
