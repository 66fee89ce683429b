"""The API's composition root: `create_app(settings)` wires controllers, clients, errors and metrics."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from litestar import Litestar
from litestar.logging import LoggingConfig
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import ScalarRenderPlugin, SwaggerRenderPlugin
from litestar.openapi.spec import Components
from litestar.types import Receive, Scope, Send

from recsys_api.auth import SECURITY_SCHEMES, check_api_keys
from recsys_api.bestsellers import BestsellersController
from recsys_api.compat import CompatController
from recsys_api.dependencies import DEPENDENCIES, Reads
from recsys_api.errors import EXCEPTION_HANDLERS
from recsys_api.events import EventsController
from recsys_api.experiments import ExperimentsController
from recsys_api.impressions import Impressions
from recsys_api.metrics import MetricsController, count_requests
from recsys_api.online_metrics import OnlineMetricsController
from recsys_api.ops import OpsController
from recsys_api.paths import decode_path_params, route_on_segments
from recsys_api.products import ProductsController
from recsys_api.publisher import Publisher
from recsys_api.requests import ApiRequest
from recsys_api.storefront import StorefrontController
from recsys_api.users import UsersController
from recsys_core.settings import Settings
from recsys_io.mongo import async_mongo_client, serving_db

MAX_BODY = 1024 * 1024  # routes that take more say so (the catalog: 10 MiB)

OPENAPI = OpenAPIConfig(
    title="recsys API",
    version="1.0.0",
    description=(
        "Collects shoppers' events and the catalog into Kafka and serves precomputed lists "
        "(history, bestsellers, recommendations, similar products) from MongoDB; every list has a "
        "`rec_id`, recorded with its products as an `impression` event, and `items` with each "
        "product's reason. Every error has "
        'the shape {"error": {"code", "message", "details"}}. Write routes need X-API-Key '
        "when RECSYS_API_KEYS is set; routes that reveal one shopper's data need it when "
        "RECSYS_API_READ_KEYS is set (a read key or a write key)."
    ),
    path="/schema",
    render_plugins=[SwaggerRenderPlugin(path="/swagger"), ScalarRenderPlugin(path="/")],
    components=Components(security_schemes=SECURITY_SCHEMES),
)


class Api(Litestar):
    """The app: Litestar, routing ids with an encoded '/' to the route they belong to (recsys_api.paths)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:  # type: ignore[override]
        if scope["type"] == "http":
            route_on_segments(scope)
        await super().__call__(scope, receive, send)


def create_app(settings: Settings) -> Litestar:
    @asynccontextmanager
    async def clients(app: Litestar) -> AsyncIterator[None]:
        mongo = async_mongo_client(settings)
        publisher = Publisher(settings)
        app.state.db = serving_db(mongo, settings)
        app.state.publisher = publisher
        await publisher.start()
        impressions = Impressions(settings)
        impressions.start()
        app.state.reads = Reads(app.state.db, impressions, settings)
        # Everything built so far lives as long as the process: keep it out of the collector's
        # full passes, whose pauses would otherwise show up as the slowest requests.
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:
            await impressions.close()
            await publisher.close()
            await mongo.close()

    app = Api(
        route_handlers=[
            EventsController,
            UsersController,
            BestsellersController,
            ProductsController,
            ExperimentsController,
            OnlineMetricsController,
            CompatController,
            OpsController,
            MetricsController,
            StorefrontController,
        ],
        dependencies=DEPENDENCIES,
        exception_handlers=EXCEPTION_HANDLERS,
        lifespan=[clients],
        middleware=[decode_path_params, count_requests, check_api_keys],
        openapi_config=OPENAPI,
        request_class=ApiRequest,
        request_max_body_size=MAX_BODY,
        # Client libraries (kafka-python's ping, pymongo) log every connection at INFO.
        logging_config=LoggingConfig(root={"level": "WARNING", "handlers": ["queue_listener"]}, log_exceptions="never"),
    )
    app.state.settings = settings
    return app
