"""Each shopper's products to buy again, in the serving store beside their recommendations.

A product's repeat rate (the share of its buyers who bought it in two or more orders) is learned
from the shop's orders, one task per product; each shopper's list (`recsys_core.repeats.buy_again`:
their own purchases of products that clear the repeat rate, by how often and how recently they
bought them) is ranked in the task that holds their orders and written from there. The API blends
it into the shopper's recommendations at the weight the buy_again_weight asset chose (or
RECSYS_BUY_AGAIN_WEIGHT); in a shop whose products nobody buys twice every list is empty and the
recommendations are the model's alone.
"""

from datetime import UTC, datetime
from functools import partial

from dagster import AssetExecutionContext, AssetKey, MaterializeResult, asset
from dagster_pyspark import PySparkResource
from pymongo import ReplaceOne

from recsys_assets.as_of import run_started_at
from recsys_assets.publish import write_from_executors
from recsys_assets.repeat_evaluation import product_repeat_rates, purchase_of
from recsys_assets.resources import LakeResource, MongoResource
from recsys_core.repeats import DEFAULT_K, buy_again_scored, shop_repeat_rate
from recsys_io.mongo import BUY_AGAIN

LIST_LENGTH = DEFAULT_K


def _document(row, rates, now: datetime) -> dict:
    history = [purchase_of(p) for p in row.purchases]
    ranked = buy_again_scored(history, rates.value, now.timestamp(), k=LIST_LENGTH)
    return {
        "_id": row.user_id,
        "user_id": row.user_id,
        "items": [{"product_id": p, "score": score} for p, score in ranked],
        "computed_at": now,
    }


def _replace(db, documents: list[dict]) -> tuple[int, int]:
    db[BUY_AGAIN].bulk_write([ReplaceOne({"_id": d["_id"]}, d, upsert=True) for d in documents], ordered=False)
    return len(documents), sum(1 for d in documents if d["items"])


def shop_purchases(session, lake: LakeResource):
    """DataFrame(user_id, item_id, order_id, ts) of the `orders` table, as the repeat rules read purchases."""
    from pyspark.sql import functions as F

    return (
        session.read.format("delta")
        .load(lake.table("orders"))
        .select("user_id", F.col("product_id").alias("item_id"), "order_id", F.col("ts").cast("double").alias("ts"))
    )


@asset(
    group_name="serving",
    deps=[AssetKey("orders")],
    description="Each shopper's products to buy again (their own purchases of products shoppers here buy "
    "again, by how often and how recently) in the buy_again collection, which the API blends into the "
    "recommendations at the weight buy_again_weight chose (or RECSYS_BUY_AGAIN_WEIGHT). Metadata: the shop's "
    "repeat rate.",
)
def buy_again_lists(
    context: AssetExecutionContext, spark: PySparkResource, lake: LakeResource, mongo: MongoResource
) -> MaterializeResult:
    from pyspark.sql import functions as F

    session = spark.spark_session
    now = run_started_at(context).astimezone(UTC)
    purchases = shop_purchases(session, lake).cache()
    rates = product_repeat_rates(purchases)  # one number per product: small, like the model's item data
    shared = session.sparkContext.broadcast(rates)
    shoppers = purchases.groupBy("user_id").agg(
        F.collect_list(F.struct("user_id", "item_id", "order_id", "ts")).alias("purchases")
    )
    written, with_items = write_from_executors(shoppers, mongo, partial(_document, rates=shared, now=now), _replace)
    purchases.unpersist()
    repeated = sum(1 for rate in rates.values() if rate > 0)
    context.log.info(
        f"{written} buy-again lists, {with_items} not empty; {repeated} of {len(rates)} products bought again"
    )
    return MaterializeResult(
        metadata={
            "dagster/row_count": written,
            "lists_not_empty": with_items,
            "products_bought_again": repeated,
            "share_of_products_bought_again": shop_repeat_rate(rates),
        }
    )
