"""The model registry, the `models` collection: register, record checks, promote, roll back, find the current one.

Exactly one version is current: the promoted one with the latest `promoted_at` (readers sort that
way, so the short moment between promoting the new version and demoting the old one is harmless).
Old versions and their files stay, so a rollback is one update. The batch layer, the CLI and the
streaming job all read and change the registry through these functions.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from pymongo import DESCENDING

from recsys_core.errors import RecsysError
from recsys_core.experiments import Experiment, ExperimentError, winning_model_version
from recsys_core.markdown import markdown_table
from recsys_io.mongo import EXPERIMENTS, MODELS


class PromotionRefused(RecsysError):
    """A model version that may not (or cannot) become current."""


def register_model(db, document: dict[str, Any]) -> None:
    db[MODELS].replace_one({"_id": document["_id"]}, document, upsert=True)


def record_checks(db, version: str, passed: bool) -> None:
    db[MODELS].update_one({"_id": version}, {"$set": {"checks_passed": passed}})


def find_model(db, version: str) -> dict[str, Any] | None:
    return db[MODELS].find_one({"_id": version})


def current_model(db, fields: Sequence[str] | None = None) -> dict[str, Any] | None:
    """The current version's document (only `fields` and `_id` when given); None before any promotion.

    One read of the `current_model` index (recsys_io.mongo.INDEXES): the streaming job asks at
    every micro-batch.
    """
    projection = dict.fromkeys(fields, 1) if fields is not None else None
    return db[MODELS].find_one({"promoted": True}, projection, sort=[("promoted_at", DESCENDING)])


def list_models(db) -> list[dict[str, Any]]:
    return list(db[MODELS].find({}).sort("created_at", DESCENDING))


def promote_model(db, version: str, now: datetime | None = None) -> dict[str, Any]:
    """Make `version` current; refused unless its evaluation checks passed."""
    document = find_model(db, version)
    if document is None:
        raise PromotionRefused(f"model version {version!r} does not exist (see `recsys model list`)")
    if document.get("checks_passed") is not True:
        raise PromotionRefused(
            f"model version {version!r} did not pass its evaluation checks "
            f"(checks_passed={document.get('checks_passed')}); it stays unpromoted"
        )
    now = now or datetime.now(UTC)
    db[MODELS].update_one({"_id": version}, {"$set": {"promoted": True, "promoted_at": now}})
    db[MODELS].update_many({"promoted": True, "_id": {"$ne": version}}, {"$set": {"promoted": False}})
    return {**document, "promoted": True, "promoted_at": now}


def rollback_model(db, to: str | None = None) -> dict[str, Any]:
    """Promote `to`, or else the newest version older than the current one that passed its checks."""
    if to is None:
        current = current_model(db)
        if current is None:
            raise PromotionRefused("no model is current, so there is nothing to roll back from")
        previous = db[MODELS].find_one(
            {"checks_passed": True, "created_at": {"$lt": current["created_at"]}}, sort=[("created_at", DESCENDING)]
        )
        if previous is None:
            raise PromotionRefused(f"no version older than {current['_id']} passed its checks")
        to = previous["_id"]
    return promote_model(db, to)


def promote_experiment_winner(db, name: str) -> dict[str, Any]:
    """Promote the model version of experiment `name`'s winning variant (recsys_core.experiments)."""
    document = db[EXPERIMENTS].find_one({"_id": name})
    if document is None:
        raise PromotionRefused(f"no experiment {name!r} (see `recsys experiment list`)")
    try:
        version = winning_model_version(Experiment.from_document(document), document.get("decision"))
    except ExperimentError as error:
        raise PromotionRefused(f"nothing to promote: {error.reason}") from None
    return promote_model(db, version)


def versions_table(models: list[dict[str, Any]], k: int = 10) -> str:
    """Markdown: every version, its family, its NDCG against popularity, whether it passed and is current."""
    rows = []
    for m in models:
        metrics = m.get("metrics") or {}
        family = m.get("family") or "als"  # versions from before EASE are ALS
        model, pop = (metrics.get(family) or {}).get("ndcg"), (metrics.get("popularity") or {}).get("ndcg")
        rows.append(
            [
                m["_id"],
                family,
                model if model is None else f"{model:.4f}",
                pop if pop is None else f"{pop:.4f}",
                m.get("checks_passed"),
                "yes" if m.get("promoted") else "",
            ]
        )
    return markdown_table(["version", "family", f"NDCG@{k} model", f"NDCG@{k} popularity", "checks", "current"], rows)
