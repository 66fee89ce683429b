"""Spark MLlib ALS on implicit feedback: its parameters, its training and its top k for a user.

The same code trains the platform's model (the `als_model` asset), `recsys evaluate` and the
benchmark; recsys_assets/evaluation.py judges it. ALS needs integer ids: users and products are
numbered in id order, and the numbering is kept beside the model so factors are exported under
the original string ids.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from recsys_core.metrics import DEFAULT_K


@dataclass(frozen=True)
class AlsParams:
    rank: int = 32
    reg_param: float = 0.3
    alpha: float = 1.0
    max_iter: int = 15
    checkpoint_interval: int = 5
    seed: int = 42

    family = "als"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def label(self) -> str:
        return f"als rank={self.rank} reg={self.reg_param:g} alpha={self.alpha:g}"


@dataclass
class TrainedAls:
    model: Any  # pyspark.ml.recommendation.ALSModel
    users: Any  # DataFrame(id string, idx int)
    items: Any  # DataFrame(id string, idx int)
    seconds: float

    def factors(self, which: str):
        """DataFrame(id string, features array<float>): the export the streaming job loads."""
        frame = self.model.userFactors if which == "user" else self.model.itemFactors
        index = self.users if which == "user" else self.items
        return frame.join(index, frame.id == index.idx).select(index.id.alias("id"), "features")

    def arrays(self, which: str) -> tuple[list[str], np.ndarray]:
        rows = self.factors(which).collect()
        ids = [r.id for r in rows]
        matrix = np.array([r.features for r in rows], dtype=np.float32).reshape(len(rows), self.model.rank)
        return ids, matrix


def numbered(frame, column: str):
    """DataFrame(id, idx): the distinct ids numbered 0.. in id order (ALS wants integer ids).

    zipWithIndex numbers the sorted partitions in place; a window over the whole frame would pull
    every id into one partition to do the same.
    """
    from pyspark.sql import functions as F

    ids = frame.select(F.col(column).alias("id")).distinct().orderBy("id")
    return (
        ids.rdd.zipWithIndex()
        .toDF("row struct<id:string>, idx long")
        .select("row.id", F.col("idx").cast("int").alias("idx"))
    )


def fit_als(interactions, params: AlsParams) -> TrainedAls:
    """Train on DataFrame(user_id, item_id, strength)."""
    from pyspark.ml.recommendation import ALS

    users, items = numbered(interactions, "user_id").cache(), numbered(interactions, "item_id").cache()
    ratings = (
        interactions.join(users, interactions.user_id == users.id)
        .select("idx", "item_id", "strength")
        .withColumnRenamed("idx", "user")
        .join(items, interactions.item_id == items.id)
        .select("user", items.idx.alias("item"), "strength")
    )
    als = ALS(
        rank=params.rank,
        regParam=params.reg_param,
        alpha=params.alpha,
        maxIter=params.max_iter,
        implicitPrefs=True,
        userCol="user",
        itemCol="item",
        ratingCol="strength",
        nonnegative=False,
        checkpointInterval=params.checkpoint_interval,
        seed=params.seed,
        coldStartStrategy="drop",
    )
    started = time.perf_counter()
    model = als.fit(ratings)
    model.userFactors.count()  # fit is lazy about nothing, but make the timing honest
    return TrainedAls(model, users, items, time.perf_counter() - started)


def best_unseen_scored(
    scores: np.ndarray, item_ids: Sequence[str], col_of: dict[str, int], seen: Iterable[str], k: int = DEFAULT_K
) -> list[tuple[str, float]]:
    """One user's k best (item, score), best first, leaving out the ones seen in training."""
    scores = scores.copy()
    for item in seen:
        if item in col_of:
            scores[col_of[item]] = -np.inf
    best = np.argpartition(-scores, min(k, len(scores) - 1))[:k]
    return [(item_ids[i], float(scores[i])) for i in sorted(best, key=lambda i: -scores[i]) if np.isfinite(scores[i])]


def best_unseen(
    scores: np.ndarray, item_ids: Sequence[str], col_of: dict[str, int], seen: Iterable[str], k: int = DEFAULT_K
) -> list[str]:
    """One user's k best items by score, leaving out the ones seen in training."""
    return [item for item, _ in best_unseen_scored(scores, item_ids, col_of, seen, k)]


def top_k_from_factors(
    user_ids: Sequence[str],
    users: np.ndarray,
    item_ids: Sequence[str],
    items: np.ndarray,
    wanted: Iterable[str],
    seen: dict[str, set[str]],
    k: int = DEFAULT_K,
) -> dict[str, list[str]]:
    """Each wanted user's k best unseen items by dot product (users unknown to the model get none)."""
    row_of = {u: i for i, u in enumerate(user_ids)}
    col_of = {p: i for i, p in enumerate(item_ids)}
    return {
        user: best_unseen(items @ users[row_of[user]], item_ids, col_of, seen.get(user, ()), k)
        for user in wanted
        if user in row_of
    }
