"""Spark MLlib ALS on implicit feedback: training, evaluation under the protocol, a bounded search.

The same code trains the platform's model (the `als_model` asset), `recsys evaluate` and the
benchmark. ALS needs integer ids: users and products are numbered in id order, and the numbering
is kept beside the model so factors are exported under the original string ids.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np

from recsys_core.metrics import (
    DEFAULT_K,
    Interaction,
    evaluate,
    popularity_ranking,
    recommend_popular,
    seen_items,
    split_interactions,
)

INTERACTION_SCHEMA = "user_id string, item_id string, strength double"


@dataclass(frozen=True)
class AlsParams:
    rank: int = 32
    reg_param: float = 0.3
    alpha: float = 1.0
    max_iter: int = 15
    checkpoint_interval: int = 5
    seed: int = 42

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


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
    result: dict[str, list[str]] = {}
    for user in wanted:
        if user not in row_of:
            continue
        scores = items @ users[row_of[user]]
        for item in seen.get(user, ()):
            if item in col_of:
                scores[col_of[item]] = -np.inf
        best = np.argpartition(-scores, min(k, len(scores) - 1))[:k]
        result[user] = [item_ids[i] for i in sorted(best, key=lambda i: -scores[i]) if np.isfinite(scores[i])]
    return result


def frame_of(spark, rows: Sequence[Interaction]):
    return spark.createDataFrame([(r.user_id, r.item_id, float(r.weight)) for r in rows], INTERACTION_SCHEMA)


def evaluate_params(
    spark, train: Sequence[Interaction], test: Sequence[Interaction], params: AlsParams, k: int = DEFAULT_K
) -> dict[str, Any]:
    """ALS and the popularity baseline on one split: {"als": metrics, "popularity": metrics, "seconds"}."""
    truth: dict[str, set[str]] = {}
    for row in test:
        truth.setdefault(row.user_id, set()).add(row.item_id)
    seen = seen_items(train)
    trained = fit_als(frame_of(spark, train), params)
    user_ids, users = trained.arrays("user")
    item_ids, items = trained.arrays("item")
    als = top_k_from_factors(user_ids, users, item_ids, items, truth, seen, k)
    popular = recommend_popular(popularity_ranking(train), seen, truth, k)
    return {"als": evaluate(als, truth, k), "popularity": evaluate(popular, truth, k), "seconds": trained.seconds}


@dataclass(frozen=True)
class SearchSpace:
    ranks: tuple[int, ...] = (32,)
    reg_params: tuple[float, ...] = (0.1, 0.3, 1.0)
    alphas: tuple[float, ...] = (1.0, 3.0)
    budget_seconds: float = 600.0

    def grid(self, base: AlsParams) -> list[AlsParams]:
        return [
            replace(base, rank=r, reg_param=g, alpha=a)
            for r, g, a in itertools.product(self.ranks, self.reg_params, self.alphas)
        ]


def search(
    spark,
    rows: Sequence[Interaction],
    space: SearchSpace,
    base: AlsParams,
    how: str = "random",
    k: int = DEFAULT_K,
    progress=print,
) -> tuple[AlsParams, dict[str, Any], list[dict[str, Any]]]:
    """Try the grid on one split, best NDCG@k first; stops starting new trials once over budget."""
    train, test = split_interactions(rows, how)
    started = time.perf_counter()
    trials: list[dict[str, Any]] = []
    for params in space.grid(base):
        if trials and time.perf_counter() - started > space.budget_seconds:
            progress(f"search budget of {space.budget_seconds:.0f}s spent after {len(trials)} trials")
            break
        result = evaluate_params(spark, train, test, params, k)
        trials.append({"params": params, **result})
        progress(
            f"rank={params.rank} reg={params.reg_param} alpha={params.alpha}: "
            f"NDCG@{k} {result['als']['ndcg']:.4f} (popularity {result['popularity']['ndcg']:.4f})"
        )
    best = max(trials, key=lambda t: t["als"]["ndcg"])
    return best["params"], best, trials
