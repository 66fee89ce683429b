"""Model versions in the `models` collection: register, record checks, promote, roll back.

Exactly one version is current: the promoted one with the latest `promoted_at` (readers sort that
way, so the short moment between promoting the new version and demoting the old one is harmless).
Old versions and their files stay, so a rollback is one update.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from recsys_core.errors import RecsysError
from recsys_core.markdown import markdown_table


class PromotionRefused(RecsysError):
    """A model version that may not (or cannot) become current."""


def register_model(db, document: dict[str, Any]) -> None:
    db.models.replace_one({"_id": document["_id"]}, document, upsert=True)


def record_checks(db, version: str, passed: bool) -> None:
    db.models.update_one({"_id": version}, {"$set": {"checks_passed": passed}})


def current_model(db) -> dict[str, Any] | None:
    return next(iter(db.models.find({"promoted": True}).sort("promoted_at", -1).limit(1)), None)


def list_models(db) -> list[dict[str, Any]]:
    return list(db.models.find({}).sort("created_at", -1))


def promote_model(db, version: str, now: datetime | None = None) -> dict[str, Any]:
    """Make `version` current; refused unless its evaluation checks passed."""
    document = db.models.find_one({"_id": version})
    if document is None:
        raise PromotionRefused(f"model version {version!r} does not exist (see `recsys model list`)")
    if document.get("checks_passed") is not True:
        raise PromotionRefused(f"model version {version!r} did not pass its evaluation checks "
                               f"(checks_passed={document.get('checks_passed')}); it stays unpromoted")
    now = now or datetime.now(UTC)
    db.models.update_one({"_id": version}, {"$set": {"promoted": True, "promoted_at": now}})
    db.models.update_many({"promoted": True, "_id": {"$ne": version}}, {"$set": {"promoted": False}})
    return {**document, "promoted": True, "promoted_at": now}


def rollback_model(db, to: str | None = None) -> dict[str, Any]:
    """Promote `to`, or else the newest version older than the current one that passed its checks."""
    if to is None:
        current = current_model(db)
        if current is None:
            raise PromotionRefused("no model is current, so there is nothing to roll back from")
        older = db.models.find({"checks_passed": True, "created_at": {"$lt": current["created_at"]}})
        previous = next(iter(older.sort("created_at", -1).limit(1)), None)
        if previous is None:
            raise PromotionRefused(f"no version older than {current['_id']} passed its checks")
        to = previous["_id"]
    return promote_model(db, to)


def versions_table(models: list[dict[str, Any]], k: int = 10) -> str:
    """Markdown: every version, its NDCG against popularity, whether it passed and is current."""
    rows = []
    for m in models:
        metrics = m.get("metrics") or {}
        als, pop = (metrics.get("als") or {}).get("ndcg"), (metrics.get("popularity") or {}).get("ndcg")
        rows.append([m["_id"], als if als is None else f"{als:.4f}", pop if pop is None else f"{pop:.4f}",
                     m.get("checks_passed"), "yes" if m.get("promoted") else ""])
    return markdown_table(["version", f"NDCG@{k} ALS", f"NDCG@{k} popularity", "checks", "current"], rows)
