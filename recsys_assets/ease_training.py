"""EASE (recsys_core.ease) trained with Spark: its parameters, the Gram matrix on executors, B on the driver.

The Gram matrix XᵀX is a self-join of the interactions on the shopper and a sum per product
pair, so the per-shopper work stays on executors and only the products x products sums reach
the driver, a row per product. Inverting it is catalog-sized work, done once with numpy
(recsys_core.ease.MAX_PRODUCTS bounds the catalog). A saved version holds B and its product ids
as plain files (`ease/weights.npy`, `ease/product_ids.json`) that the serving assets broadcast.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from recsys_assets.als_training import numbered
from recsys_core.ease import MAX_PRODUCTS, ease_scores, ease_weights, penalty

EASE_DIR = "ease"


@dataclass(frozen=True)
class EaseParams:
    l2: float = 20.0
    """λ relative to the mean of diag(XᵀX) (recsys_core.ease.penalty)."""
    binary: bool = True
    """True: X holds 1 for every product a shopper has; False: their summed interaction strength."""

    family = "ease"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def label(self) -> str:
        return f"ease l2={self.l2:g}×diag {'binary' if self.binary else 'weighted'}"


@dataclass
class TrainedEase:
    product_ids: list[str]
    weights: np.ndarray  # B, float32, rows and columns in product_ids order
    binary: bool
    seconds: float
    l2: float = 0.0  # the absolute λ it was fitted with

    def save(self, path: Path) -> None:
        target = path / EASE_DIR
        target.mkdir(parents=True, exist_ok=True)
        np.save(target / "weights.npy", self.weights)
        (target / "product_ids.json").write_text(
            json.dumps({"ids": self.product_ids, "binary": self.binary, "l2": self.l2})
        )

    @classmethod
    def load(cls, path: Path) -> TrainedEase:
        meta = json.loads((path / EASE_DIR / "product_ids.json").read_text())
        return cls(meta["ids"], np.load(path / EASE_DIR / "weights.npy"), meta["binary"], 0.0, meta.get("l2", 0.0))

    def scores(self, products: Iterable[tuple[str, float]], row_of: dict[str, int]) -> np.ndarray:
        """x_u · B of a shopper's (product, strength) pairs; products B does not know add nothing."""
        values: dict[int, float] = {}
        for product_id, strength in products:
            row = row_of.get(product_id)
            if row is not None:
                values[row] = 1.0 if self.binary else values.get(row, 0.0) + float(strength)
        return ease_scores(self.weights, list(values), list(values.values()))


def strengths(interactions, binary: bool):
    """DataFrame(user_id, item_id, value): one row per pair, 1.0 or the summed strength."""
    from pyspark.sql import functions as F

    value = F.lit(1.0) if binary else F.sum("strength")
    return interactions.groupBy("user_id", "item_id").agg(value.cast("double").alias("value"))


def gram_matrix(interactions, binary: bool) -> tuple[list[str], np.ndarray]:
    """(product ids, XᵀX) of DataFrame(user_id, item_id, strength); the pairs are summed on executors."""
    from pyspark.sql import functions as F

    index = numbered(interactions, "item_id").cache()
    try:
        product_ids = [r.id for r in index.orderBy("idx").collect()]
        if len(product_ids) > MAX_PRODUCTS:
            raise ValueError(f"EASE is built for catalogs up to {MAX_PRODUCTS} products, not {len(product_ids)}")
        x = strengths(interactions, binary).join(index, F.col("item_id") == index.id).select("user_id", "idx", "value")
        a = x.select("user_id", F.col("idx").alias("i"), F.col("value").alias("a"))
        b = x.select("user_id", F.col("idx").alias("j"), F.col("value").alias("b"))
        # XᵀX is symmetric: the upper triangle is summed and mirrored on the driver.
        pairs = a.join(b, "user_id").where("i <= j").groupBy("i", "j").agg(F.sum(F.col("a") * F.col("b")).alias("g"))
        rows = pairs.groupBy("i").agg(F.collect_list("j").alias("js"), F.collect_list("g").alias("gs"))
        gram = np.zeros((len(product_ids), len(product_ids)), dtype=np.float64)
        for row in rows.toLocalIterator():
            gram[row.i, row.js] = row.gs
    finally:
        index.unpersist()
    upper = np.triu(gram)
    return product_ids, upper + upper.T - np.diag(np.diag(upper))


def fit_ease(interactions, params: EaseParams, grams: dict | None = None) -> TrainedEase:
    """Train on DataFrame(user_id, item_id, strength). `grams` keeps each X's Gram matrix between calls on
    the same interactions, so a search over λ builds it once."""
    started = time.perf_counter()
    key = ("gram", params.binary)
    if grams is not None and key in grams:
        product_ids, gram = grams[key]
    else:
        product_ids, gram = gram_matrix(interactions, params.binary)
        if grams is not None:
            grams[key] = (product_ids, gram)
    l2 = penalty(gram, params.l2)
    weights = ease_weights(gram, l2)
    return TrainedEase(product_ids, weights, params.binary, time.perf_counter() - started, l2)
