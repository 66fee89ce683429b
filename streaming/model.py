"""The promoted ALS model, hot-reloaded: the driver names it every micro-batch, each Python worker loads it once.

A promoted version of another family (EASE) has no factors: the job then scores without a
model, from neighbours and bestsellers, and says so once in its log (`ModelCache.current`).

The driver looks the current version up at the start of every batch (one indexed read of the
registry, recsys_io.registry.current_model). When the version changes, a Spark job copies its
Parquet factors into JSON lines under RECSYS_DATA_DIR/models/stream/<version>: executors read
those with the standard library alone, the factors never pass through the driver, and a newly
promoted model is used from the next batch on without restarting the job. The tasks of a batch
receive the version and that directory (`ModelFiles`); each Python worker loads a version once
and keeps it until the driver names another.
"""

from __future__ import annotations

import json
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote

import numpy as np

from recsys_core.realtime import ItemFactors
from recsys_core.settings import Settings
from recsys_io.registry import current_model

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

log = logging.getLogger("recsys.stream")
FACTORS = ("item_factors", "user_factors")
# What Spark writes last when a job's output is complete: a directory without it was cut short.
COMPLETE = "_SUCCESS"


@dataclass(frozen=True)
class ModelFiles:
    """Which model the tasks of a batch score with, and where its factors are as JSON lines."""

    version: str
    path: str


@dataclass(frozen=True)
class PromotedModel:
    version: str
    items: ItemFactors
    user_index: dict[str, int]
    user_matrix: np.ndarray

    def user_vector(self, user_id: str) -> np.ndarray | None:
        row = self.user_index.get(user_id)
        return None if row is None else self.user_matrix[row]


def stream_factors_dir(settings: Settings, version: str) -> Path:
    return settings.models_dir / "stream" / quote(version, safe="")


def prune_copies(settings: Settings, keep: set[str]) -> None:
    """Delete the stream's copies of versions other than `keep`: the current one, and the one before
    it that a task still finishing a batch may be reading. Older copies would pile up one per model."""
    root = settings.models_dir / "stream"
    kept = {quote(version, safe="") for version in keep}
    for path in root.iterdir() if root.is_dir() else ():
        if path.name not in kept:
            shutil.rmtree(path, ignore_errors=True)


def export_factors(spark: SparkSession, source: Path, target: Path) -> None:
    """Parquet factors (id: string, features: array<float>) -> JSON lines, written by executors.

    A copy that is complete (a crash may leave one that is not) is used as it is.
    """
    for name in FACTORS:
        if not (target / name / COMPLETE).exists():
            spark.read.parquet(str(source / name)).select("id", "features").write.mode("overwrite").json(
                str(target / name)
            )


def read_factors(path: Path) -> tuple[tuple[str, ...], np.ndarray]:
    """JSON-lines factors -> (ids, matrix), ordered by id."""
    if not (path / COMPLETE).exists():
        raise FileNotFoundError(f"{path} holds no complete copy of the factors")
    rows = sorted(
        (row["id"], row["features"])
        for part in sorted(path.glob("part-*"))
        for line in part.read_text().splitlines()
        if line and (row := json.loads(line))
    )
    ids = tuple(str(pid) for pid, _ in rows)
    matrix = np.asarray([features for _, features in rows], dtype=np.float32)
    return ids, matrix.reshape(len(ids), -1) if ids else np.zeros((0, 0), dtype=np.float32)


def load_model(files: ModelFiles) -> PromotedModel:
    item_ids, item_matrix = read_factors(Path(files.path) / "item_factors")
    user_ids, user_matrix = read_factors(Path(files.path) / "user_factors")
    return PromotedModel(
        files.version, ItemFactors(item_ids, item_matrix), {uid: i for i, uid in enumerate(user_ids)}, user_matrix
    )


# This Python worker's model: tasks come and go, the worker (spark.python.worker.reuse) stays.
_loaded: PromotedModel | None = None


def promoted_model(files: ModelFiles | None) -> PromotedModel | None:
    """The model `files` names, loaded once per Python worker (and again only for another version)."""
    global _loaded
    if files is None:
        return None
    if _loaded is None or _loaded.version != files.version:
        _loaded = None  # the previous factors go before the next are read
        _loaded = load_model(files)
        log.info("model %s loaded: %d items, %d users", files.version, len(_loaded.items.ids), len(_loaded.user_index))
    return _loaded


class ModelCache:
    """On the driver: the model the next batch scores with; `current(db)` costs one small read unless
    a new one is promoted."""

    def __init__(self, spark: SparkSession, settings: Settings):
        self.spark = spark
        self.settings = settings
        self.model: ModelFiles | None = None
        self._previous: ModelFiles | None = None
        self._broken: set[str] = set()
        self._other_family: set[str] = set()  # promoted versions of a family this job cannot score with

    def current(self, db) -> ModelFiles | None:
        document = current_model(db, ("version", "path", "family"))
        if document is None:
            return self.model
        version = str(document.get("version", document["_id"]))
        family = str(document.get("family") or "als")
        if family != "als":
            if self.model is not None or version not in self._other_family:
                # Scoring realtime lists needs item factors; without them the lists are the
                # neighbours of recent views (the promoted model's similar_items) and bestsellers.
                log.warning(
                    "model %s is %s, which has no factors to score with: realtime lists use neighbours "
                    "and bestsellers only (the no-model path) until an ALS version is current",
                    version,
                    family.upper(),
                )
                self._other_family.add(version)
            self._previous, self.model = self.model, None
            return None
        if (self.model and self.model.version == version) or version in self._broken:
            return self.model
        target = stream_factors_dir(self.settings, version)
        try:
            export_factors(self.spark, Path(document["path"]), target)
        except Exception as error:  # noqa: BLE001 - a bad model must not stop the stream
            # Keep serving with the previous model; do not retry this version every batch.
            self._broken.add(version)
            log.error(
                "model %s at %s cannot be loaded (%s); keeping %s",
                version,
                document.get("path"),
                str(error).strip().splitlines()[0][:300] if str(error).strip() else type(error).__name__,
                self.model.version if self.model else "no model",
            )
            return self.model
        log.info("model %s promoted: the next batches score with it", version)
        self._previous, self.model = self.model, ModelFiles(version, str(target))
        prune_copies(self.settings, {m.version for m in (self.model, self._previous) if m is not None})
        return self.model

    def failed(self, version: str, reason: str) -> None:
        """A task could not load `version`: the next batches go back to the model before it."""
        if self.model is None or self.model.version != version:
            return
        self._broken.add(version)
        self.model, self._previous = self._previous, None
        keeping = self.model.version if self.model else "no model"
        log.error("model %s cannot be loaded (%s); keeping %s", version, reason, keeping)
