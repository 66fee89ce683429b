"""The promoted ALS model, hot-reloaded: looked up at the start of every micro-batch, loaded once per version.

The lookup is one indexed read of the registry (recsys_io.registry.current_model); the factors are
read with Spark only when the version changes and kept in the driver as numpy arrays, so a
newly promoted model is used from the next batch on without restarting the job.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from recsys_core.realtime import ItemFactors
from recsys_io.registry import current_model

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

log = logging.getLogger("recsys.stream")


@dataclass(frozen=True)
class PromotedModel:
    version: str
    items: ItemFactors
    user_index: dict[str, int]
    user_matrix: np.ndarray

    def user_vector(self, user_id: str) -> np.ndarray | None:
        row = self.user_index.get(user_id)
        return None if row is None else self.user_matrix[row]


def read_factors(spark: SparkSession, path: Path) -> tuple[tuple[str, ...], np.ndarray]:
    """Parquet factors (id: string, features: array<float>) -> (ids, matrix), ordered by id."""
    rows = spark.read.parquet(str(path)).select("id", "features").orderBy("id").collect()
    ids = tuple(str(row["id"]) for row in rows)
    matrix = np.asarray([row["features"] for row in rows], dtype=np.float32)
    return ids, matrix.reshape(len(ids), -1)


def load_model(spark: SparkSession, version: str, path: Path) -> PromotedModel:
    item_ids, item_matrix = read_factors(spark, path / "item_factors")
    user_ids, user_matrix = read_factors(spark, path / "user_factors")
    return PromotedModel(
        version, ItemFactors(item_ids, item_matrix), {uid: i for i, uid in enumerate(user_ids)}, user_matrix
    )


class ModelCache:
    """Keeps the current promoted model; `current(db)` costs one small read unless a new one is promoted."""

    def __init__(self, spark: SparkSession):
        self.spark = spark
        self.model: PromotedModel | None = None
        self._broken: set[str] = set()

    def current(self, db) -> PromotedModel | None:
        document = current_model(db, ("version", "path"))
        if document is None:
            return self.model
        version = str(document.get("version", document["_id"]))
        if (self.model and self.model.version == version) or version in self._broken:
            return self.model
        try:
            model = load_model(self.spark, version, Path(document["path"]))
        except Exception as error:  # noqa: BLE001 - a bad model must not stop the stream
            # Keep serving with the previous model; do not retry this version every batch.
            self._broken.add(version)
            log.error(
                "model %s at %s cannot be loaded (%s); keeping %s",
                version,
                document.get("path"),
                error,
                self.model.version if self.model else "no model",
            )
            return self.model
        log.info("model %s loaded: %d items, %d users", version, len(model.items.ids), len(model.user_index))
        self.model = model
        return model
