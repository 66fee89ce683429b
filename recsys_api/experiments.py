"""A/B tests: define, show and stop experiments, and serve each shopper the list of their variant.

The rules (validation, assignment, verdict) are recsys_core.experiments'. A shopper's list on an
experiment's surface comes from the variant's strategy:

    bestsellers           the shop's bestsellers (the same for everyone)
    category_bestsellers  the bestsellers of the categories the shopper browsed
    model, realtime       the shopper's recommendations document, as the batch and streaming
                          layers keep it (the streaming layer rewrites it within seconds)
    model_version         that document when its model version is the pinned one, else the
                          category bestsellers (the shopper is not left without a list)

Which experiment runs is read from the store at most every EXPERIMENTS_TTL_SECONDS per process,
so serving a list costs no extra read; another API process sees a change within that time.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from typing import Annotated, Any

import msgspec
from litestar import Controller, delete, get, put
from litestar.params import Body
from pymongo.asynchronous.database import AsyncDatabase

from recsys_api import lists, serving
from recsys_api.auth import SECURITY
from recsys_api.errors import InvalidInput, NotFound, documented
from recsys_api.held import Held
from recsys_api.params import ListQuery
from recsys_api.schemas import ExperimentList, ExperimentVariant, ExperimentView, VariantResult
from recsys_core.documents import GLOBAL_SCOPE
from recsys_core.experiments import Experiment, ExperimentError, Variant, parse_experiment, running_on
from recsys_io.mongo import EXPERIMENTS

EXPERIMENTS_TTL_SECONDS = 5.0

EXPERIMENT_BODY = Body(
    title="Experiment",
    description=(
        '{"surface": "recommendations" | "bestsellers", "variants": [{"name", "share", "strategy" '
        '(bestsellers, category_bestsellers, model, realtime) or "model_version"}], "starts_at"?, '
        '"ends_at"?}; shares sum to 1.'
    ),
)


async def _read_experiments(db: AsyncDatabase, _last: list[Experiment] | None) -> list[Experiment]:
    return [Experiment.from_document(d) async for d in db[EXPERIMENTS].find({})]


# Every stored experiment, read again once the process's copy is EXPERIMENTS_TTL_SECONDS old.
_experiments = Held(_read_experiments, EXPERIMENTS_TTL_SECONDS)


async def _variant_list(db: AsyncDatabase, variant: Variant, user_id: str, query: ListQuery) -> serving.ProductList:
    if variant.strategy == "bestsellers":
        return await serving.shop_bestsellers(db, GLOBAL_SCOPE, query.limit, query.min_size, query.exclude)
    if variant.strategy == "category_bestsellers":
        return await serving.user_bestsellers(db, user_id, query)
    served = await serving.recommendations(db, user_id, query)
    if variant.model_version is not None and served.model_version != variant.model_version:
        return await serving.user_bestsellers(db, user_id, query)
    return served


async def serve(db: AsyncDatabase, surface: str, user_id: str, query: ListQuery) -> serving.ProductList:
    """The shopper's list on `surface`: their variant's when an experiment runs there, else the default."""
    experiment = running_on(await _experiments.get(db), surface, datetime.now(UTC))
    if experiment is None:
        if surface == lists.BESTSELLERS:
            return await serving.user_bestsellers(db, user_id, query)
        return await serving.recommendations(db, user_id, query)
    variant = experiment.variant_of(user_id)
    served = await _variant_list(db, variant, user_id, query)
    return dataclasses.replace(served, experiment=experiment.name, variant=variant.name)


def _view(document: dict[str, Any], now: datetime) -> ExperimentView:
    experiment = Experiment.from_document(document)
    return ExperimentView(
        name=experiment.name,
        surface=experiment.surface,
        variants=[msgspec.convert(v.as_dict(), type=ExperimentVariant) for v in experiment.variants],
        starts_at=experiment.starts_at,
        ends_at=experiment.ends_at,
        status=experiment.status(now),
        results=msgspec.convert(document.get("results") or [], type=list[VariantResult]),
        decision=document.get("decision") or "no data yet",
    )


class ExperimentsController(Controller):
    path = "/v1/experiments"
    tags = ["experiments"]

    @put(
        "/{name:str}",
        security=SECURITY,
        responses=documented(400, 401, 422, 503),
        summary="Define or redefine an experiment",
    )
    async def define(self, name: str, data: Annotated[Any, EXPERIMENT_BODY], db: AsyncDatabase) -> ExperimentView:
        """Shoppers are assigned by a hash of (experiment, shopper): the same shopper always sees the same
        variant. Redefining keeps the results computed so far."""
        now = datetime.now(UTC)
        try:
            experiment = parse_experiment(name, data, now)
        except ExperimentError as error:
            raise InvalidInput(
                f"experiment {name!r} is invalid: {error}", [{"field": error.field, "reason": error.reason}]
            ) from None
        await db[EXPERIMENTS].update_one(
            {"_id": name}, {"$set": {**experiment.as_document(), "updated_at": now}}, upsert=True
        )
        _experiments.forget(db)
        return _view(await db[EXPERIMENTS].find_one({"_id": name}), now)

    @get(responses=documented(503), summary="Every experiment")
    async def list_all(self, db: AsyncDatabase) -> ExperimentList:
        now = datetime.now(UTC)
        return ExperimentList([_view(d, now) async for d in db[EXPERIMENTS].find({}).sort("_id", 1)])

    @get("/{name:str}", responses=documented(404, 503), summary="One experiment with its results")
    async def show(self, name: str, db: AsyncDatabase) -> ExperimentView:
        """The definition, whether it runs, each variant's figures against the first and the decision."""
        document = await db[EXPERIMENTS].find_one({"_id": name})
        if document is None:
            raise NotFound(f"no experiment {name!r}", {"name": name})
        return _view(document, datetime.now(UTC))

    @delete(
        "/{name:str}",
        status_code=200,
        security=SECURITY,
        responses=documented(401, 404, 503),
        summary="Stop an experiment",
    )
    async def stop(self, name: str, db: AsyncDatabase) -> ExperimentView:
        """It ends now (its definition and results are kept): lists go back to the default strategy."""
        now = datetime.now(UTC)
        document = await db[EXPERIMENTS].find_one({"_id": name})
        if document is None:
            raise NotFound(f"no experiment {name!r}", {"name": name})
        ended = Experiment.from_document(document).stopped(now).as_document()
        await db[EXPERIMENTS].update_one({"_id": name}, {"$set": ended})
        _experiments.forget(db)
        return _view({**document, **ended}, now)
