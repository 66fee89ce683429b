"""What handlers get injected: the serving database, the Kafka publisher, the impressions and the settings.

The clients are opened once per process by the app's lifespan and kept on `app.state`. Routes
that serve lists take them as one `Reads`: Litestar resolves the dependencies of one level
concurrently, an asyncio task each on every request, which cost a read more CPU than recording
its impression.
"""

from __future__ import annotations

from dataclasses import dataclass

from litestar.datastructures import State
from litestar.di import Provide
from pymongo.asynchronous.database import AsyncDatabase

from recsys_api.impressions import Impressions
from recsys_api.params import Category, Exclude, Limit, ListQuery, excluded_products
from recsys_api.publisher import Publisher
from recsys_core.settings import Settings


@dataclass(frozen=True)
class Reads:
    """What serving a list needs: the serving database, where its impression goes, the settings."""

    db: AsyncDatabase
    impressions: Impressions
    settings: Settings


def provide_db(state: State) -> AsyncDatabase:
    return state.db


def provide_publisher(state: State) -> Publisher:
    return state.publisher


def provide_reads(state: State) -> Reads:
    return state.reads


def provide_settings(state: State) -> Settings:
    return state.settings


def provide_list_query(
    reads: Reads, limit: Limit = 10, exclude: Exclude = None, category: Category = None
) -> ListQuery:
    settings = reads.settings
    return ListQuery(
        limit, settings.min_list_size, tuple(excluded_products(exclude)), category, settings.buy_again_weight
    )


DEPENDENCIES = {
    "db": Provide(provide_db, sync_to_thread=False),
    "publisher": Provide(provide_publisher, sync_to_thread=False),
    "reads": Provide(provide_reads, sync_to_thread=False),
    "settings": Provide(provide_settings, sync_to_thread=False),
    "list_query": Provide(provide_list_query, sync_to_thread=False),
}
