"""GET /v1/metrics/online: what the served lists achieved per day, as the online_metrics asset last published it."""

from __future__ import annotations

from typing import Annotated

import msgspec
from litestar import Controller, get
from litestar.params import Parameter
from pymongo.asynchronous.database import AsyncDatabase

from recsys_api.errors import ApiError, documented
from recsys_api.schemas import OnlineMetrics, OnlineMetricsRow
from recsys_core.events import MAX_ID_LENGTH
from recsys_core.online_metrics import DIMENSIONS, DayRangeError, day_range
from recsys_io.mongo import ONLINE_METRICS

FirstDay = Annotated[str | None, Parameter(query="from", max_length=10, description="First UTC day, YYYY-MM-DD")]
LastDay = Annotated[str | None, Parameter(max_length=10, description="Last UTC day, YYYY-MM-DD (included)")]
Surface = Annotated[
    str | None, Parameter(max_length=MAX_ID_LENGTH, description="Only lists of this surface, e.g. recommendations")
]


class OnlineMetricsController(Controller):
    path = "/v1/metrics/online"
    tags = ["metrics"]

    @get(responses=documented(400, 503), summary="Online metrics per day, surface, strategy, model and variant")
    async def online_metrics(
        self,
        db: AsyncDatabase,
        from_: FirstDay = None,
        to: LastDay = None,
        surface: Surface = None,
    ) -> OnlineMetrics:
        """lists, products_shown, clicks, ctr (clicks / products shown), orders attributed to a click,
        conversion (orders / lists), revenue and coverage (distinct products shown / catalog)."""
        try:
            first, last = day_range(from_, to)
        except DayRangeError as error:
            raise ApiError(str(error), [{"field": error.field, "reason": error.reason}]) from None
        query: dict = {"day": {"$gte": first.isoformat(), "$lte": last.isoformat()}}
        if surface is not None:
            query["surface"] = surface
        documents = await db[ONLINE_METRICS].find(query, {"_id": 0}).to_list(None)
        documents.sort(key=lambda d: (d["day"], *(d.get(name) or "" for name in DIMENSIONS)))
        return OnlineMetrics([msgspec.convert(d, type=OnlineMetricsRow) for d in documents])
