"""The evaluation protocol (recsys_core.metrics) as Spark jobs, and the bounded parameter search.

Executors do the per-user work: each user's split, each model's top k for every held-out user
and that user's metrics. The driver only plans, and sees what is per product (the item factors
and the popularity ranking, broadcast back to the tasks) and the means. So a model asset, a
`recsys evaluate` and a benchmark over more shoppers need more executors, not a bigger driver.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from functools import partial
from typing import Any

import numpy as np

from recsys_assets.als_training import AlsParams, best_unseen, fit_als
from recsys_core.metrics import (
    DEFAULT_K,
    METRIC_NAMES,
    SPLIT_SEED,
    SPLITS,
    TRAIN_RATIO,
    Interaction,
    split_user,
    top_unseen,
    user_metrics,
)

INTERACTION_SCHEMA = "user_id string, item_id string, weight double, ts double"
SPLIT_SCHEMA = INTERACTION_SCHEMA + ", held_out boolean"
SCORE_SCHEMA = "model string, " + ", ".join(f"{name} double" for name in METRIC_NAMES)


def frame_of(spark, rows: Iterable[Interaction]):
    """DataFrame(user_id, item_id, weight, ts) of interactions read on the driver (a local file)."""
    return spark.createDataFrame(
        [(r.user_id, r.item_id, float(r.weight), float(r.ts)) for r in rows], INTERACTION_SCHEMA
    )


def _split_users(grouped: Iterator[tuple[str, Iterable[Interaction]]], how: str, ratio: float, seed: int):
    for _, rows in grouped:
        kept, held_out = split_user(rows, how, ratio, seed)
        for flag, part in ((False, kept), (True, held_out)):
            for r in part:
                yield r.user_id, r.item_id, r.weight, r.ts, flag


def split_frame(frame, how: str = "random", ratio: float = TRAIN_RATIO, seed: int = SPLIT_SEED):
    """DataFrame(user_id, item_id, weight, ts, held_out): split_user applied to each user in a task."""
    if how not in SPLITS:
        raise ValueError(f"unknown split {how!r}: expected random or time")
    by_user = frame.select("user_id", "item_id", "weight", "ts").rdd.map(
        lambda r: (r.user_id, Interaction(r.user_id, r.item_id, float(r.weight), float(r.ts)))
    )
    tagged = by_user.groupByKey().mapPartitions(partial(_split_users, how=how, ratio=ratio, seed=seed))
    return frame.sparkSession.createDataFrame(tagged, SPLIT_SCHEMA)


def _score_users(rows, catalog, k: int):
    """Each held-out user's metrics for ALS and for popularity: (model, precision, recall, ndcg, map)."""
    item_ids, items, ranking = catalog.value
    col_of = {p: i for i, p in enumerate(item_ids)}
    for row in rows:
        relevant, seen = set(row.relevant), set(row.seen or ())
        factors = row.features
        als = [] if factors is None else best_unseen(items @ np.asarray(factors, np.float32), item_ids, col_of, seen, k)
        for model, recommended in (("als", als), ("popularity", top_unseen(ranking, seen, k))):
            yield (model, *user_metrics(recommended, relevant, k).values())


def evaluate_split(split, params: AlsParams, k: int = DEFAULT_K) -> dict[str, Any]:
    """ALS fitted on the split's training part and the popularity baseline, judged on its held-out part:
    {"als": metrics, "popularity": metrics, "seconds": ALS training time}."""
    from pyspark.sql import functions as F

    spark = split.sparkSession
    train = split.where(~F.col("held_out")).select("user_id", "item_id", F.col("weight").alias("strength"))
    trained = fit_als(train, params)
    item_ids, items = trained.arrays("item")
    popular = train.groupBy("item_id").agg(F.countDistinct("user_id").alias("users"))
    ranking = [r.item_id for r in popular.orderBy(F.desc("users"), "item_id").collect()]
    catalog = spark.sparkContext.broadcast((item_ids, items, ranking))
    held_out = split.where("held_out").groupBy("user_id").agg(F.collect_set("item_id").alias("relevant"))
    seen = train.groupBy("user_id").agg(F.collect_set("item_id").alias("seen"))
    users = trained.factors("user").select(F.col("id").alias("user_id"), "features")
    per_user = held_out.join(seen, "user_id", "left").join(users, "user_id", "left")
    scores = spark.createDataFrame(
        per_user.rdd.mapPartitions(partial(_score_users, catalog=catalog, k=k)), SCORE_SCHEMA
    )
    means = {
        row.model: {name: float(row[name]) for name in METRIC_NAMES}
        for row in scores.groupBy("model").agg(*(F.avg(name).alias(name) for name in METRIC_NAMES)).collect()
    }
    catalog.destroy()
    empty = {name: 0.0 for name in METRIC_NAMES}
    return {"als": means.get("als", empty), "popularity": means.get("popularity", empty), "seconds": trained.seconds}


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
    split, space: SearchSpace, base: AlsParams, k: int = DEFAULT_K, progress=print
) -> tuple[AlsParams, dict[str, Any], list[dict[str, Any]]]:
    """Try the grid on one split (split_frame), best NDCG@k first; stops starting new trials once over budget."""
    split = split.cache()
    started = time.perf_counter()
    trials: list[dict[str, Any]] = []
    try:
        for params in space.grid(base):
            if trials and time.perf_counter() - started > space.budget_seconds:
                progress(f"search budget of {space.budget_seconds:.0f}s spent after {len(trials)} trials")
                break
            result = evaluate_split(split, params, k)
            trials.append({"params": params, **result})
            progress(
                f"rank={params.rank} reg={params.reg_param} alpha={params.alpha}: "
                f"NDCG@{k} {result['als']['ndcg']:.4f} (popularity {result['popularity']['ndcg']:.4f})"
            )
    finally:
        split.unpersist()
    best = max(trials, key=lambda t: t["als"]["ndcg"])
    return best["params"], best, trials
