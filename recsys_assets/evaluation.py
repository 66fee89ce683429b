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
    intra_list_diversity,
    list_popularity,
    split_user,
    top_unseen,
    user_metrics,
)

INTERACTION_SCHEMA = "user_id string, item_id string, weight double, ts double"
SPLIT_SCHEMA = INTERACTION_SCHEMA + ", held_out boolean"
SCORE_SCHEMA = (
    "model string, "
    + ", ".join(f"{name} double" for name in METRIC_NAMES)
    + ", avg_popularity double, diversity double, items array<string>"
)


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
    """Each held-out user's list from ALS and from popularity, with its metrics: SCORE_SCHEMA rows."""
    item_ids, items, ranking, popularity, category_of = catalog.value
    col_of = {p: i for i, p in enumerate(item_ids)}
    for row in rows:
        relevant, seen = set(row.relevant), set(row.seen or ())
        factors = row.features
        als = [] if factors is None else best_unseen(items @ np.asarray(factors, np.float32), item_ids, col_of, seen, k)
        for model, recommended in (("als", als), ("popularity", top_unseen(ranking, seen, k))):
            accuracy = user_metrics(recommended, relevant, k).values()
            yield (
                model,
                *accuracy,
                list_popularity(recommended, popularity),
                intra_list_diversity(recommended, category_of),
                recommended,
            )


def _catalog(train, trained, categories) -> tuple:
    """What every task needs of the products: the item factors, the popularity ranking, each product's
    share of training users, and its category."""
    from pyspark.sql import functions as F

    item_ids, items = trained.arrays("item")
    popular = train.groupBy("item_id").agg(F.countDistinct("user_id").alias("users"))
    counts = [(r.item_id, r.users) for r in popular.orderBy(F.desc("users"), "item_id").collect()]
    train_users = train.select("user_id").distinct().count()
    category_of = {} if categories is None else {r.item_id: r.category_id for r in categories.collect()}
    return item_ids, items, [i for i, _ in counts], {i: n / train_users for i, n in counts}, category_of


def _means(scores, catalog_size: int, with_diversity: bool) -> dict[str, dict[str, float | None]]:
    """Each model's metrics over the held-out users' lists (SCORE_SCHEMA rows)."""
    from pyspark.sql import functions as F

    averaged = (*METRIC_NAMES, "avg_popularity", "diversity")
    means = {r.model: r.asDict() for r in scores.groupBy("model").agg(*(F.avg(n).alias(n) for n in averaged)).collect()}
    shown = scores.select("model", F.explode("items").alias("item")).groupBy("model").agg(F.countDistinct("item"))
    coverage = {model: distinct / catalog_size for model, distinct in shown.collect()}
    report: dict[str, dict[str, float | None]] = {}
    for model in ("als", "popularity"):
        values = means.get(model, {})
        report[model] = {name: float(values.get(name) or 0.0) for name in (*METRIC_NAMES, "avg_popularity")}
        report[model]["coverage"] = coverage.get(model, 0.0)
        report[model]["diversity"] = values.get("diversity") if with_diversity else None
    return report


def evaluate_split(split, params: AlsParams, k: int = DEFAULT_K, categories=None) -> dict[str, Any]:
    """ALS fitted on the split's training part and the popularity baseline, judged on its held-out part:
    {"als": metrics, "popularity": metrics, "seconds": ALS training time}. Each model's metrics are the
    accuracy ones, coverage, avg_popularity and, given `categories` (DataFrame(item_id, category_id)),
    diversity."""
    from pyspark.sql import functions as F

    spark = split.sparkSession
    train = split.where(~F.col("held_out")).select("user_id", "item_id", F.col("weight").alias("strength"))
    trained = fit_als(train, params)
    catalog = spark.sparkContext.broadcast(_catalog(train, trained, categories))
    held_out = split.where("held_out").groupBy("user_id").agg(F.collect_set("item_id").alias("relevant"))
    seen = train.groupBy("user_id").agg(F.collect_set("item_id").alias("seen"))
    users = trained.factors("user").select(F.col("id").alias("user_id"), "features")
    per_user = held_out.join(seen, "user_id", "left").join(users, "user_id", "left")
    scored = per_user.rdd.mapPartitions(partial(_score_users, catalog=catalog, k=k))
    scores = spark.createDataFrame(scored, SCORE_SCHEMA).cache()
    try:
        report = _means(scores, split.select("item_id").distinct().count(), categories is not None)
    finally:
        scores.unpersist()
        catalog.destroy()
    return {**report, "seconds": trained.seconds}


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
    split, space: SearchSpace, base: AlsParams, k: int = DEFAULT_K, progress=print, categories=None
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
            result = evaluate_split(split, params, k, categories)
            trials.append({"params": params, **result})
            progress(
                f"rank={params.rank} reg={params.reg_param} alpha={params.alpha}: "
                f"NDCG@{k} {result['als']['ndcg']:.4f} (popularity {result['popularity']['ndcg']:.4f})"
            )
    finally:
        split.unpersist()
    best = max(trials, key=lambda t: t["als"]["ndcg"])
    return best["params"], best, trials
