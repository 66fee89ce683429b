"""Bestsellers: products ranked by distinct buyers over the window ending at the run's time.

The rule is `recsys_core.bestsellers` (unit-tested); this is its Spark twin. In a run launched for
a partition or a range of them (a backfill, `recsys materialize --partition DAY`), the window ends
at the end of that (last) day instead of now, so a backfilled day sees the bestsellers it would
have seen then.
"""


from datetime import UTC, datetime

from dagster import (AssetExecutionContext, AssetKey, AssetSpec, Config, MaterializeResult, MetadataValue,
                     multi_asset)
from dagster_pyspark import PySparkResource

from recsys_assets.catalog import overwrite
from recsys_assets.ingest import PARTITION_TAG, RANGE_END_TAG, day_bounds
from recsys_assets.resources import LakeResource
from recsys_core.bestsellers import KEEP_PER_SCOPE, window_start
from recsys_core.events import parse_ts
from recsys_core.markdown import markdown_table


class BestsellerConfig(Config):
    as_of: str = ""
    """ISO-8601 end of the window (default: the run's partition end, else now)."""


def window_end(context: AssetExecutionContext, config: BestsellerConfig) -> datetime:
    if config.as_of:
        return parse_ts(config.as_of, "as_of")
    tags = context.run.tags
    partition = tags.get(PARTITION_TAG) or tags.get(RANGE_END_TAG)
    if partition:
        return min(day_bounds(partition)[1], datetime.now(UTC))
    return datetime.now(UTC)


def ranked(lines, scope_columns: list[str], limit: int = KEEP_PER_SCOPE):
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    counts = lines.groupBy(*scope_columns, "product_id").agg(F.countDistinct("user_id").alias("buyers"))
    order = Window.partitionBy(*scope_columns).orderBy(F.desc("buyers"), F.asc("product_id"))
    return counts.withColumn("rank", F.row_number().over(order)).where(F.col("rank") <= limit)


def _top_table(rows) -> str:
    return markdown_table(["rank", "product", "buyers"], [[r["rank"], r["product_id"], r["buyers"]] for r in rows])


@multi_asset(
    specs=[
        AssetSpec("bestsellers", group_name="bestsellers", deps=[AssetKey("orders"), AssetKey("products")],
                  description="Products ranked by distinct buyers over RECSYS_BESTSELLER_WINDOW_DAYS days ending "
                              "at the run's time (buyers desc, product_id asc), top 100. Delta."),
        AssetSpec("category_bestsellers", group_name="bestsellers",
                  deps=[AssetKey("orders"), AssetKey("products")],
                  description="The same ranking within each category of the catalog. Delta."),
    ],
)
def bestseller_tables(context: AssetExecutionContext, config: BestsellerConfig, spark: PySparkResource,
                      lake: LakeResource):
    from pyspark.sql import functions as F

    session = spark.spark_session
    as_of = window_end(context, config)
    start = window_start(as_of, lake.bestseller_window_days)
    orders = session.read.format("delta").load(lake.table("orders"))
    categories = (session.read.format("delta").load(lake.table("products")).select("product_id", "category_id")
                  if lake.exists("products") else session.createDataFrame([], "product_id string, category_id string"))
    lines = (orders.where((F.col("ts") >= F.lit(start)) & (F.col("ts") <= F.lit(as_of)))
             .join(categories, "product_id", "left"))
    stamp = [F.lit(as_of).alias("window_end"), F.lit(lake.bestseller_window_days).alias("window_days")]
    overall = ranked(lines, []).select("rank", "product_id", "buyers", *stamp)
    per_category = ranked(lines.where("category_id is not null"), ["category_id"]).select(
        "category_id", "rank", "product_id", "buyers", *stamp)
    n_overall = overwrite(overall, lake.table("bestsellers"))
    n_category = overwrite(per_category, lake.table("category_bestsellers"))
    top = session.read.format("delta").load(lake.table("bestsellers")).orderBy("rank").limit(10).collect()
    context.log.info(f"window {start.isoformat()} .. {as_of.isoformat()}: {n_overall} bestsellers")
    yield MaterializeResult(asset_key="bestsellers", metadata={
        "dagster/row_count": n_overall, "window_end": as_of.isoformat(), "top_10": MetadataValue.md(_top_table(top))})
    yield MaterializeResult(asset_key="category_bestsellers", metadata={
        "dagster/row_count": n_category,
        "categories": per_category.select("category_id").distinct().count()})
