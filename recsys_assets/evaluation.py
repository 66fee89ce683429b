"""The evaluation protocol (recsys_core.metrics) as Spark jobs, and the bounded parameter search.

Executors do the per-user work: each user's split, each model's top k for every held-out user
and that user's metrics. The driver only plans, and sees what is per product (ALS's item factors
or EASE's B, and the popularity ranking, broadcast back to the tasks) and the means. So a model
asset, a `recsys evaluate` and a benchmark over more shoppers need more executors, not a bigger
driver.

Two model families compete, ALS (als_training) and EASE (ease_training). They differ only in
how they are fitted and in their per-user scoring rule (`FactorScores`, `EaseUserScores`); the
split, the lists, the metrics and the search are the same code for both.
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
from recsys_assets.ease_training import EaseParams, TrainedEase, fit_ease
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


@dataclass(frozen=True)
class FactorScores:
    """ALS: a shopper's scores are the item factors times their user factors (None for a shopper ALS dropped)."""

    items: np.ndarray

    def __call__(self, row) -> np.ndarray | None:
        factors = row.features
        return None if factors is None else self.items @ np.asarray(factors, np.float32)


@dataclass(frozen=True)
class EaseUserScores:
    """EASE: a shopper's scores are their training products times B (recsys_core.ease)."""

    model: TrainedEase

    def __post_init__(self) -> None:
        object.__setattr__(self, "_row_of", {p: i for i, p in enumerate(self.model.product_ids)})

    def __call__(self, row) -> np.ndarray | None:
        products = [(s.item_id, s.weight) for s in row.seen or ()]
        return self.model.scores(products, self._row_of) if products else None  # type: ignore[attr-defined]


@dataclass
class Fitted:
    """One model family fitted on a split's training part, as the scoring tasks need it."""

    family: str
    item_ids: list[str]
    scores: Any  # FactorScores | EaseUserScores: the per-user rule, broadcast to the tasks
    user_features: Any  # DataFrame(user_id, features) joined to each user, or None
    seconds: float


ModelParams = AlsParams | EaseParams


def params_of(family: str, values: dict[str, Any]) -> ModelParams:
    """The parameters a registered model version was trained with (its `family` and `params`)."""
    kind = EaseParams if family == EaseParams.family else AlsParams
    return kind(**values)


def fit_for_evaluation(train, params: ModelParams, grams: dict | None = None) -> Fitted:
    """Fit `params`' family on DataFrame(user_id, item_id, strength)."""
    from pyspark.sql import functions as F

    if isinstance(params, EaseParams):
        ease = fit_ease(train, params, grams)
        return Fitted(params.family, ease.product_ids, EaseUserScores(ease), None, ease.seconds)
    trained = fit_als(train, params)
    item_ids, items = trained.arrays("item")
    users = trained.factors("user").select(F.col("id").alias("user_id"), "features")
    return Fitted(params.family, item_ids, FactorScores(items), users, trained.seconds)


def _score_users(rows, catalog, k: int):
    """Each held-out user's list from the model and from popularity, with its metrics: SCORE_SCHEMA rows."""
    family, item_ids, scores, ranking, popularity, category_of = catalog.value
    col_of = {p: i for i, p in enumerate(item_ids)}
    for row in rows:
        relevant, seen = set(row.relevant), {s.item_id for s in row.seen or ()}
        user_scores = scores(row)
        model = [] if user_scores is None else best_unseen(user_scores, item_ids, col_of, seen, k)
        for name, recommended in ((family, model), ("popularity", top_unseen(ranking, seen, k))):
            accuracy = user_metrics(recommended, relevant, k).values()
            yield (
                name,
                *accuracy,
                list_popularity(recommended, popularity),
                intra_list_diversity(recommended, category_of),
                recommended,
            )


def product_catalog(train, fitted: Fitted, categories) -> tuple:
    """What every task needs of the products: the model's per-product data, the popularity ranking, each
    product's share of training users, and its category."""
    from pyspark.sql import functions as F

    popular = train.groupBy("item_id").agg(F.countDistinct("user_id").alias("users"))
    counts = [(r.item_id, r.users) for r in popular.orderBy(F.desc("users"), "item_id").collect()]
    train_users = train.select("user_id").distinct().count()
    category_of = {} if categories is None else {r.item_id: r.category_id for r in categories.collect()}
    share = {i: n / train_users for i, n in counts}
    return fitted.family, fitted.item_ids, fitted.scores, [i for i, _ in counts], share, category_of


def model_means(
    scores, catalog_size: int, models: Iterable[str], with_diversity: bool
) -> dict[str, dict[str, float | None]]:
    """Each model's metrics over the held-out users' lists (SCORE_SCHEMA rows)."""
    from pyspark.sql import functions as F

    averaged = (*METRIC_NAMES, "avg_popularity", "diversity")
    means = {r.model: r.asDict() for r in scores.groupBy("model").agg(*(F.avg(n).alias(n) for n in averaged)).collect()}
    shown = scores.select("model", F.explode("items").alias("item")).groupBy("model").agg(F.countDistinct("item"))
    coverage = {model: distinct / catalog_size for model, distinct in shown.collect()}
    report: dict[str, dict[str, float | None]] = {}
    for model in models:
        values = means.get(model, {})
        report[model] = {name: float(values.get(name) or 0.0) for name in (*METRIC_NAMES, "avg_popularity")}
        report[model]["coverage"] = coverage.get(model, 0.0)
        report[model]["diversity"] = values.get("diversity") if with_diversity else None
    return report


def evaluate_split(
    split, params: ModelParams, k: int = DEFAULT_K, categories=None, grams: dict | None = None
) -> dict[str, Any]:
    """`params`' model family fitted on the split's training part and the popularity baseline, judged on its
    held-out part: {family: metrics, "popularity": metrics, "family": family, "seconds": training time}.
    Each model's metrics are the accuracy ones, coverage, avg_popularity and, given `categories`
    (DataFrame(item_id, category_id)), diversity. `grams` lets EASE trials on one split share X's Gram
    matrix (ease_training.fit_ease)."""
    from pyspark.sql import functions as F

    spark = split.sparkSession
    train = split.where(~F.col("held_out")).select("user_id", "item_id", F.col("weight").alias("strength"))
    fitted = fit_for_evaluation(train, params, grams)
    catalog = spark.sparkContext.broadcast(product_catalog(train, fitted, categories))
    held_out = split.where("held_out").groupBy("user_id").agg(F.collect_set("item_id").alias("relevant"))
    seen = (
        split.where(~F.col("held_out"))
        .groupBy("user_id")
        .agg(F.collect_list(F.struct("item_id", "weight")).alias("seen"))
    )
    per_user = held_out.join(seen, "user_id", "left")
    if fitted.user_features is not None:
        per_user = per_user.join(fitted.user_features, "user_id", "left")
    scored = per_user.rdd.mapPartitions(partial(_score_users, catalog=catalog, k=k))
    scores = spark.createDataFrame(scored, SCORE_SCHEMA).cache()
    try:
        catalog_size = split.select("item_id").distinct().count()
        report = model_means(scores, catalog_size, (fitted.family, "popularity"), categories is not None)
    finally:
        scores.unpersist()
        catalog.destroy()
    return {**report, "family": fitted.family, "seconds": fitted.seconds}


FAMILIES = ("als", "ease")


@dataclass(frozen=True)
class SearchSpace:
    ranks: tuple[int, ...] = (32,)
    reg_params: tuple[float, ...] = (0.1, 0.3, 1.0)
    alphas: tuple[float, ...] = (1.0, 3.0)
    budget_seconds: float = 600.0
    families: tuple[str, ...] = FAMILIES
    ease_l2s: tuple[float, ...] = (10.0, 20.0, 40.0)
    ease_binary: tuple[bool, ...] = (True, False)

    def grid(self, base: AlsParams) -> list[ModelParams]:
        """Every candidate, the families taking turns, so a budget spent early still tried each family."""
        unknown = set(self.families) - set(FAMILIES)
        if unknown:
            raise ValueError(f"unknown model families {sorted(unknown)}: expected {', '.join(FAMILIES)}")
        als: list[ModelParams] = [
            replace(base, rank=r, reg_param=g, alpha=a)
            for r, g, a in itertools.product(self.ranks, self.reg_params, self.alphas)
        ]
        # Binary first: its Gram matrix serves every λ before the weighted one is built.
        ease: list[ModelParams] = [
            EaseParams(l2, binary) for binary, l2 in itertools.product(self.ease_binary, self.ease_l2s)
        ]
        turns = [candidates for family, candidates in (("als", als), ("ease", ease)) if family in self.families]
        return [p for pair in itertools.zip_longest(*turns) for p in pair if p is not None]


def model_ndcg(trial: dict[str, Any]) -> float:
    """What the search ranks a trial by: its model's NDCG@k."""
    return float(trial[trial["family"]]["ndcg"])


def best_by_family(trials: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Each family's best trial."""
    best: dict[str, dict[str, Any]] = {}
    for trial in trials:
        if trial["family"] not in best or model_ndcg(trial) > model_ndcg(best[trial["family"]]):
            best[trial["family"]] = trial
    return best


def search(
    split, space: SearchSpace, base: AlsParams, k: int = DEFAULT_K, progress=print, categories=None
) -> tuple[ModelParams, dict[str, Any], list[dict[str, Any]]]:
    """Try the grid on one split (split_frame), best NDCG@k first, whatever the family; stops starting new
    trials once over budget."""
    split = split.cache()
    started = time.perf_counter()
    trials: list[dict[str, Any]] = []
    grams: dict = {}
    try:
        for params in space.grid(base):
            if trials and time.perf_counter() - started > space.budget_seconds:
                progress(f"search budget of {space.budget_seconds:.0f}s spent after {len(trials)} trials")
                break
            result = evaluate_split(split, params, k, categories, grams)
            trials.append({"params": params, **result})
            progress(
                f"{params.label()}: NDCG@{k} {model_ndcg(result):.4f} (popularity {result['popularity']['ndcg']:.4f})"
            )
    finally:
        split.unpersist()
    best = max(trials, key=model_ndcg)
    return best["params"], best, trials
