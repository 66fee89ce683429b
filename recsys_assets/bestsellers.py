"""Bestsellers: products ranked by distinct buyers over the window ending at the run's as_of.

The rule is `recsys_core.bestsellers`; `bestseller_frames` is its Spark SQL form (a parity test
keeps the two equal). The window ends at the run's as_of (recsys_assets.as_of): in a run for a
partition or a range of them (a backfill, `recsys materialize --partition DAY`), the end of that
(last) day, so a backfilled day sees the bestsellers it would have seen then.
"""

from dagster import AssetExecutionContext, AssetKey, AssetSpec, MaterializeResult, MetadataValue, multi_asset
from dagster_pyspark import PySparkResource

from recsys_assets.as_of import AsOfConfig, run_as_of
from recsys_assets.catalog import overwrite
from recsys_assets.resources import LakeResource
from recsys_core.bestsellers import KEEP_PER_SCOPE, window_start
from recsys_core.markdown import markdown_table


def ranked(lines, scope_columns: list[str], limit: int = KEEP_PER_SCOPE):
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    counts = lines.groupBy(*scope_columns, "product_id").agg(F.countDistinct("user_id").alias("buyers"))
    # recsys_core.ranking.rank_key; Spark orders strings by their UTF-8 bytes, which is code point order too.
    order = Window.partitionBy(*scope_columns).orderBy(F.desc("buyers"), F.asc("product_id"))
    return counts.withColumn("rank", F.row_number().over(order)).where(F.col("rank") <= limit)


def bestseller_frames(orders, categories, as_of, window_days: int, limit: int = KEEP_PER_SCOPE):
    """(overall, per category): DataFrames (rank, product_id, buyers), the latter with category_id first.

    `orders` has user_id, product_id and ts; `categories` product_id and category_id.
    """
    from pyspark.sql import functions as F

    start = window_start(as_of, window_days)
    lines = orders.where((F.col("ts") >= F.lit(start)) & (F.col("ts") <= F.lit(as_of))).join(
        categories, "product_id", "left"
    )
    overall = ranked(lines, [], limit).select("rank", "product_id", "buyers")
    per_category = ranked(lines.where("category_id is not null"), ["category_id"], limit).select(
        "category_id", "rank", "product_id", "buyers"
    )
    return overall, per_category


def _top_table(rows) -> str:
    return markdown_table(["rank", "product", "buyers"], [[r["rank"], r["product_id"], r["buyers"]] for r in rows])


@multi_asset(
    specs=[
        AssetSpec(
            "bestsellers",
            group_name="bestsellers",
            deps=[AssetKey("orders"), AssetKey("products")],
            description="Products ranked by distinct buyers over RECSYS_BESTSELLER_WINDOW_DAYS days ending "
            "at the run's time (buyers desc, product_id asc), top 100. Delta.",
        ),
        AssetSpec(
            "category_bestsellers",
            group_name="bestsellers",
            deps=[AssetKey("orders"), AssetKey("products")],
            description="The same ranking within each category of the catalog. Delta.",
        ),
    ],
)
def bestseller_tables(context: AssetExecutionContext, config: AsOfConfig, spark: PySparkResource, lake: LakeResource):
    from pyspark.sql import functions as F

    session = spark.spark_session
    as_of = run_as_of(context, config)
    orders = session.read.format("delta").load(lake.table("orders"))
    categories = (
        session.read.format("delta").load(lake.table("products")).select("product_id", "category_id")
        if lake.exists("products")
        else session.createDataFrame([], "product_id string, category_id string")
    )
    overall, per_category = bestseller_frames(orders, categories, as_of, lake.bestseller_window_days)
    stamp = [F.lit(as_of).alias("window_end"), F.lit(lake.bestseller_window_days).alias("window_days")]
    n_overall = overwrite(overall.select("*", *stamp), lake.table("bestsellers"))
    n_category = overwrite(per_category.select("*", *stamp), lake.table("category_bestsellers"))
    top = session.read.format("delta").load(lake.table("bestsellers")).orderBy("rank").limit(10).collect()
    start = window_start(as_of, lake.bestseller_window_days)
    context.log.info(f"window {start.isoformat()} .. {as_of.isoformat()}: {n_overall} bestsellers")
    yield MaterializeResult(
        asset_key="bestsellers",
        metadata={
            "dagster/row_count": n_overall,
            "window_end": as_of.isoformat(),
            "top_10": MetadataValue.md(_top_table(top)),
        },
    )
    yield MaterializeResult(
        asset_key="category_bestsellers",
        metadata={"dagster/row_count": n_category, "categories": per_category.select("category_id").distinct().count()},
    )
