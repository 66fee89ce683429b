"""GET /v1/bestsellers: the shop's or one category's bestsellers, not tied to a shopper."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, get
from litestar.params import Parameter

from recsys_api import lists, serving
from recsys_api.dependencies import Reads
from recsys_api.errors import documented
from recsys_api.params import Limit
from recsys_api.schemas import ScopeProducts
from recsys_core.documents import GLOBAL_SCOPE
from recsys_core.events import MAX_ID_LENGTH

Category = Annotated[
    str | None, Parameter(max_length=MAX_ID_LENGTH, description="A category id; absent: the whole shop")
]


class BestsellersController(Controller):
    path = "/v1/bestsellers"
    tags = ["bestsellers"]

    @get(responses=documented(400, 503), summary="Bestsellers of the shop or of one category")
    async def bestsellers(self, reads: Reads, category: Category = None, limit: Limit = 10) -> ScopeProducts:
        """Ranked by distinct buyers over RECSYS_BESTSELLER_WINDOW_DAYS, ties by product id."""
        scope = category or GLOBAL_SCOPE
        result = await serving.shop_bestsellers(reads.db, scope, limit, reads.settings.min_list_size)
        rec_id, items = lists.shown(reads.impressions, lists.SHOP_BESTSELLERS, None, result)
        return ScopeProducts(
            scope=scope,
            rec_id=rec_id,
            products=result.products,
            items=items,
            type=result.type,
            strategy=result.strategy,
        )
