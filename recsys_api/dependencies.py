"""What handlers get injected: the serving database, the Kafka publisher, the impressions and the settings.

The clients are opened once per process by the app's lifespan and kept on `app.state`.
"""

from __future__ import annotations

from litestar.datastructures import State
from litestar.di import Provide
from pymongo.asynchronous.database import AsyncDatabase

from recsys_api.impressions import Impressions
from recsys_api.params import provide_list_query
from recsys_api.publisher import Publisher
from recsys_core.settings import Settings


def provide_db(state: State) -> AsyncDatabase:
    return state.db


def provide_publisher(state: State) -> Publisher:
    return state.publisher


def provide_impressions(state: State) -> Impressions:
    return state.impressions


def provide_settings(state: State) -> Settings:
    return state.settings


DEPENDENCIES = {
    "db": Provide(provide_db, sync_to_thread=False),
    "publisher": Provide(provide_publisher, sync_to_thread=False),
    "impressions": Provide(provide_impressions, sync_to_thread=False),
    "settings": Provide(provide_settings, sync_to_thread=False),
    "list_query": Provide(provide_list_query, sync_to_thread=False),
}
