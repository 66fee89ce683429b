"""A promoted EASE version's serving lists, computed in Spark tasks against its broadcast B.

Each shopper's list is x_u · B (recsys_core.ease) minus what they bought; each product's
neighbours are the largest entries of its row of B, what having that product adds to each other
product's score. The driver loads B once (catalog-sized) and broadcasts it; shoppers and
products are scored in the tasks that hold them. This module imports no Dagster: executors load
it to run the tasks.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial

import numpy as np

from recsys_assets.als_training import best_unseen_scored
from recsys_assets.ease_training import TrainedEase

RANKED_SCHEMA = "{key} string, {other} string, score double, rank int"


def _shopper_lists(rows, model, top_n: int) -> Iterator[tuple[str, str, float, int]]:
    ease: TrainedEase = model.value
    col_of = {p: i for i, p in enumerate(ease.product_ids)}
    for row in rows:
        scores = ease.scores([(p.product_id, p.strength) for p in row.products], col_of)
        bought = set(row.bought or ())
        ranked = best_unseen_scored(scores, ease.product_ids, col_of, bought, top_n)
        for rank, (product_id, score) in enumerate(ranked, start=1):
            yield row.user_id, product_id, score, rank


def shopper_lists(ease: TrainedEase, interactions, bought, top_n: int):
    """DataFrame(user_id, product_id, score, rank): every shopper's top_n by x_u · B, bought products removed.

    `interactions`: DataFrame(user_id, product_id, strength); `bought`: DataFrame(user_id, product_id).
    """
    from pyspark.sql import functions as F

    session = interactions.sparkSession
    model = session.sparkContext.broadcast(ease)
    products = interactions.groupBy("user_id").agg(F.collect_list(F.struct("product_id", "strength")).alias("products"))
    purchases = bought.groupBy("user_id").agg(F.collect_set("product_id").alias("bought"))
    per_user = products.join(purchases, "user_id", "left")
    lists = per_user.rdd.mapPartitions(partial(_shopper_lists, model=model, top_n=top_n))
    return session.createDataFrame(lists, RANKED_SCHEMA.format(key="user_id", other="product_id"))


def _product_neighbours(rows, model, k: int) -> Iterator[tuple[str, str, float, int]]:
    ease: TrainedEase = model.value
    for row in rows:
        weights = ease.weights[row.idx]
        best = np.argpartition(-weights, min(k, len(weights) - 1))[:k]
        ranked = sorted((i for i in best if weights[i] > 0), key=lambda i: (-weights[i], ease.product_ids[i]))
        for rank, i in enumerate(ranked, start=1):
            yield ease.product_ids[row.idx], ease.product_ids[i], float(weights[i]), rank


def product_neighbours(session, ease: TrainedEase, k: int):
    """DataFrame(product_id, neighbour_id, score, rank): each product's k largest positive entries of its row of B."""
    model = session.sparkContext.broadcast(ease)
    rows = session.range(len(ease.product_ids)).withColumnRenamed("id", "idx")
    neighbours = rows.rdd.mapPartitions(partial(_product_neighbours, model=model, k=k))
    return session.createDataFrame(neighbours, RANKED_SCHEMA.format(key="product_id", other="neighbour_id"))
