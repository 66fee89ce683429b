"""GET /v1/bestsellers: the shop's or one category's bestsellers, not tied to a shopper."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, get
from litestar.params import Parameter
from pymongo.asynchronous.database import AsyncDatabase

from recsys_api import lists, serving
from recsys_api.errors import documented
from recsys_api.impressions import Impressions
from recsys_api.params import Limit
from recsys_api.schemas import ScopeProducts
from recsys_core.documents import GLOBAL_SCOPE
from recsys_core.events import MAX_ID_LENGTH
from recsys_core.settings import Settings

Category = Annotated[
    str | None, Parameter(max_length=MAX_ID_LENGTH, description="A category id; absent: the whole shop")
]


class BestsellersController(Controller):
    path = "/v1/bestsellers"
    tags = ["bestsellers"]

    @get(responses=documented(400, 503), summary="Bestsellers of the shop or of one category")
    async def bestsellers(
        self,
        db: AsyncDatabase,
        impressions: Impressions,
        settings: Settings,
        category: Category = None,
        limit: Limit = 10,
    ) -> ScopeProducts:
        """Ranked by distinct buyers over RECSYS_BESTSELLER_WINDOW_DAYS, ties by product id."""
        scope = category or GLOBAL_SCOPE
        result = await serving.shop_bestsellers(db, scope, limit, settings.min_list_size)
        rec_id, items = lists.shown(impressions, lists.SHOP_BESTSELLERS, None, result)
        return ScopeProducts(
            scope=scope,
            rec_id=rec_id,
            products=result.products,
            items=items,
            type=result.type,
            strategy=result.strategy,
        )
