"""Liveness and readiness for orchestrators (metrics are served by recsys_api.metrics)."""

from __future__ import annotations

import asyncio

from litestar import Controller, get
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import PyMongoError

from recsys_api.errors import Unavailable, documented
from recsys_api.publisher import Publisher
from recsys_api.schemas import Health, Readiness

READY_TIMEOUT_SECONDS = 2.5


async def _mongo_answers(db: AsyncDatabase) -> bool:
    try:
        await asyncio.wait_for(db.command("ping"), READY_TIMEOUT_SECONDS)
        return True
    except (PyMongoError, TimeoutError):
        return False


async def _kafka_answers(publisher: Publisher) -> bool:
    try:
        return await asyncio.wait_for(publisher.ready(), READY_TIMEOUT_SECONDS + 1)
    except TimeoutError:
        return False


class OpsController(Controller):
    tags = ["operations"]

    @get("/health", summary="The process is alive")
    async def health(self) -> Health:
        return Health(status="ok")

    @get("/ready", summary="MongoDB and Kafka answer (503 otherwise)", responses=documented(503))
    async def ready(self, db: AsyncDatabase, publisher: Publisher) -> Readiness:
        """503 details say which server does not answer."""
        mongo, kafka = await asyncio.gather(_mongo_answers(db), _kafka_answers(publisher))
        if not (mongo and kafka):
            down = " and ".join(name for name, up in (("MongoDB", mongo), ("Kafka", kafka)) if not up)
            raise Unavailable(f"{down} not answering", {"mongo": mongo, "kafka": kafka})
        return Readiness(status="ready", mongo=mongo, kafka=kafka)
