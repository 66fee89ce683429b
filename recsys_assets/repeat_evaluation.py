"""The evaluation that counts repeat purchases, as Spark jobs (the rules are recsys_core.repeats).

Each shopper's last order is held out (shoppers with one order only train); nothing a shopper
bought before is dropped, neither from the lists nor from the truth, because buying it again is
the point. Four lists are judged on the same held-out orders: popularity, the model family,
buy_again and their blend. The blend's weight is chosen on a validation split carved out of the
training part the same way (each remaining shopper's last training order held out), so the test
orders only report.

Executors do the per-shopper work (the split, the repeat rate of each product, every list and its
metrics); the driver sees what is per product (the model's item data, the popularity ranking, the
repeat rates, broadcast back to the tasks) and the means.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from functools import partial
from typing import Any

from recsys_assets.als_training import best_unseen
from recsys_assets.evaluation import SCORE_SCHEMA, ModelParams, fit_for_evaluation, model_means, product_catalog
from recsys_core.metrics import DEFAULT_K, intra_list_diversity, list_popularity, user_metrics
from recsys_core.repeats import (
    BLEND_WEIGHTS,
    BUY_AGAIN,
    DEFAULT_HALF_LIFE_DAYS,
    DEFAULT_MIN_REPEAT_RATE,
    Purchase,
    best_weight,
    blend,
    buy_again,
    check_weight,
    repeat_rate,
    split_last_order,
)

PURCHASE_SCHEMA = "user_id string, item_id string, order_id string, ts double"
SPLIT_SCHEMA = PURCHASE_SCHEMA + ", held_out boolean"


@dataclass(frozen=True)
class RepeatProtocol:
    """The list length, the blend weights to try, and buy_again's rule parameters (recsys_core.repeats)."""

    k: int = DEFAULT_K
    weights: tuple[float, ...] = BLEND_WEIGHTS
    min_rate: float = DEFAULT_MIN_REPEAT_RATE
    half_life_days: float = DEFAULT_HALF_LIFE_DAYS


def blend_name(weight: float) -> str:
    return f"blend {weight:g}"


def purchases_frame(spark, rows: Iterable[Purchase]):
    """DataFrame(user_id, item_id, order_id, ts) of purchases read on the driver (a local file)."""
    return spark.createDataFrame([(p.user_id, p.item_id, p.order_id, float(p.ts)) for p in rows], PURCHASE_SCHEMA)


def purchase_of(row) -> Purchase:
    """A Purchase from a row of user_id, item_id, order_id (may be null) and ts (seconds)."""
    return Purchase(row.user_id, row.item_id, row.order_id or "", float(row.ts))


def _split_shoppers(grouped: Iterator[tuple[str, Iterable[Purchase]]]):
    for _, rows in grouped:
        kept, held_out = split_last_order(rows)
        for flag, part in ((False, kept), (True, held_out)):
            for p in part:
                # The order as the rule resolved it, so that later steps count orders by one column.
                yield p.user_id, p.item_id, p.order, p.ts, flag


def split_last_orders(frame):
    """DataFrame(user_id, item_id, order_id, ts, held_out): split_last_order applied to each shopper in a task."""
    by_user = frame.select("user_id", "item_id", "order_id", "ts").rdd.map(lambda r: (r.user_id, purchase_of(r)))
    return frame.sparkSession.createDataFrame(by_user.groupByKey().mapPartitions(_split_shoppers), SPLIT_SCHEMA)


def _rates(grouped: Iterator[tuple[str, Iterable[Purchase]]]):
    for item, rows in grouped:
        yield item, repeat_rate(rows)


def product_repeat_rates(purchases) -> dict[str, float]:
    """Every product's repeat rate (per product, like the model's item data): repeat_rate in a task per product."""
    by_item = purchases.select("user_id", "item_id", "order_id", "ts").rdd.map(lambda r: (r.item_id, purchase_of(r)))
    return dict(by_item.groupByKey().mapPartitions(_rates).collect())


def _score_shoppers(rows, catalog, protocol: RepeatProtocol):
    """Each held-out shopper's four kinds of list with their metrics: SCORE_SCHEMA rows."""
    (family, item_ids, scores, ranking, popularity, category_of), rates = catalog.value
    col_of = {p: i for i, p in enumerate(item_ids)}
    k = protocol.k
    for row in rows:
        relevant = set(row.relevant)
        history = [Purchase(row.user_id, h.item_id, h.order_id, h.ts) for h in row.history or ()]
        again = buy_again(history, rates, row.now, k, protocol.min_rate, protocol.half_life_days)
        user_scores = scores(row)
        # Twice k, so that a blend still fills k after the products both lists hold.
        model = [] if user_scores is None else best_unseen(user_scores, item_ids, col_of, (), 2 * k)
        lists = {"popularity": ranking[:k], family: model[:k], BUY_AGAIN: again}
        for weight in protocol.weights:
            lists[blend_name(weight)] = [p for p, _ in blend(again, model, weight, k)]
        for name, recommended in lists.items():
            yield (
                name,
                *user_metrics(recommended, relevant, k).values(),
                list_popularity(recommended, popularity),
                intra_list_diversity(recommended, category_of),
                recommended,
            )


def evaluate_repeat_split(
    split, params: ModelParams, protocol: RepeatProtocol = RepeatProtocol(), categories=None
) -> dict[str, Any]:
    """popularity, `params`' family, buy_again and a blend per weight, fitted on the split's training part
    (split_last_orders) and judged on its held-out orders, previously bought products included:
    {name: metrics, "family": family, "seconds": training time}."""
    from pyspark.sql import functions as F

    for weight in protocol.weights:
        check_weight(weight)
    spark = split.sparkSession
    train = split.where(~F.col("held_out"))
    # The model learns from how many orders held each product.
    strengths = train.groupBy("user_id", "item_id").agg(F.countDistinct("order_id").cast("double").alias("strength"))
    fitted = fit_for_evaluation(strengths, params)
    catalog = spark.sparkContext.broadcast(
        (product_catalog(strengths, fitted, categories), product_repeat_rates(train))
    )
    held_out = (
        split.where("held_out")
        .groupBy("user_id")
        .agg(F.collect_set("item_id").alias("relevant"), F.min("ts").alias("now"))
    )
    history = train.groupBy("user_id").agg(F.collect_list(F.struct("item_id", "order_id", "ts")).alias("history"))
    seen = strengths.groupBy("user_id").agg(
        F.collect_list(F.struct("item_id", F.col("strength").alias("weight"))).alias("seen")
    )
    per_user = held_out.join(history, "user_id", "left").join(seen, "user_id", "left")
    if fitted.user_features is not None:
        per_user = per_user.join(fitted.user_features, "user_id", "left")
    scored = per_user.rdd.mapPartitions(partial(_score_shoppers, catalog=catalog, protocol=protocol))
    scores = spark.createDataFrame(scored, SCORE_SCHEMA).cache()
    models = ("popularity", fitted.family, BUY_AGAIN, *(blend_name(w) for w in protocol.weights))
    try:
        report = model_means(scores, split.select("item_id").distinct().count(), models, categories is not None)
    finally:
        scores.unpersist()
        catalog.destroy()
    return {**report, "family": fitted.family, "seconds": fitted.seconds}


def validation_ndcg(split, params: ModelParams, protocol: RepeatProtocol = RepeatProtocol()) -> dict[float, float]:
    """NDCG@k of each of the protocol's blend weights on the validation split carved out of `split`'s
    training part (split_last_orders again), one model fitted; best_weight of it is the weight to blend at.
    Every weight scores 0 when no shopper has an order left to hold out there."""
    from pyspark.sql import functions as F

    validation = split_last_orders(split.where(~F.col("held_out")).drop("held_out")).cache()
    try:
        tuned = evaluate_repeat_split(validation, params, protocol)
    finally:
        validation.unpersist()
    return {w: float(tuned[blend_name(w)]["ndcg"] or 0.0) for w in protocol.weights}


def evaluate_with_repeats(
    purchases, params: ModelParams, protocol: RepeatProtocol = RepeatProtocol(), categories=None
) -> dict[str, Any]:
    """The whole protocol on DataFrame(user_id, item_id, order_id, ts) (see the module's docstring):
    {"popularity", family, "buy_again", "blend": metrics on the test orders, "blend_weight": the weight the
    validation chose, "validation": NDCG@k of each weight there, "family", "seconds"}."""
    split = split_last_orders(purchases).cache()
    try:
        ndcg = validation_ndcg(split, params, protocol)
        weight = best_weight(ndcg)
        result = evaluate_repeat_split(split, params, replace(protocol, weights=(weight,)), categories)
    finally:
        split.unpersist()
    family = result["family"]
    return {
        "popularity": result["popularity"],
        family: result[family],
        BUY_AGAIN: result[BUY_AGAIN],
        "blend": result[blend_name(weight)],
        "blend_weight": weight,
        "validation": {blend_name(w): v for w, v in ndcg.items()},
        "family": family,
        "seconds": result["seconds"],
    }
