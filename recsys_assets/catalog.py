"""The catalog and the orders: the tables every ranking joins against."""

from pathlib import Path

from dagster import AssetExecutionContext, AssetKey, MaterializeResult, asset
from dagster_pyspark import PySparkResource

from recsys_assets.ingest import load_events
from recsys_assets.resources import KafkaResource, LakeResource
from recsys_io.lake_log import rows_of_last_write

PRODUCT_SCHEMA = (
    "product_id string, category_id string, name string, description string, price double, attributes string"
)


def overwrite(frame, path: str) -> int:
    """Replace the Delta table at `path` with `frame`; the rows it holds now.

    The figure is the commit's own `numOutputRows`: counting the table read back costs another
    Spark job and the snapshot's state, about 0.2 s on every overwrite of every run.
    """
    frame.write.format("delta").mode("overwrite").option("overwriteSchema", "true").save(path)
    written = rows_of_last_write(Path(path))
    return written if written is not None else frame.sparkSession.read.format("delta").load(path).count()


def latest_products(spark, kafka: KafkaResource):
    """The compacted topic's latest value per product key; a null value (tombstone) removes it."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    records = (
        spark.read.format("kafka")
        .options(**kafka.source_options(kafka.catalog_topic))
        .option("startingOffsets", "earliest")
        .load()
        .select(
            F.col("key").cast("string").alias("key"),
            F.col("value").cast("string").alias("value"),
            "partition",
            "offset",
            F.col("timestamp").alias("updated_at"),
        )
    )
    newest = Window.partitionBy("key").orderBy(F.desc("offset"), F.desc("partition"))
    latest = records.withColumn("_n", F.row_number().over(newest)).where("_n = 1 and value is not null")
    # The API validated every product before producing it; rows without ids are ignored, not guessed.
    return (
        latest.select(F.from_json("value", PRODUCT_SCHEMA).alias("p"), "updated_at")
        .select("p.*", "updated_at")
        .where("product_id is not null and category_id is not null")
    )


@asset(
    group_name="catalog",
    description="The catalog: the latest version of every product on the catalog topic "
    "(deleted products dropped). Delta, one row per product.",
)
def products(spark: PySparkResource, kafka: KafkaResource, lake: LakeResource) -> MaterializeResult:
    rows = overwrite(latest_products(spark.spark_session, kafka), lake.table("products"))
    return MaterializeResult(metadata={"dagster/row_count": rows})


@asset(
    group_name="catalog",
    deps=[AssetKey("raw_events")],
    description="One row per purchased item: order_id, user_id, product_id, quantity, price, ts. Delta.",
)
def orders(context: AssetExecutionContext, spark: PySparkResource, lake: LakeResource) -> MaterializeResult:
    from pyspark.sql import functions as F

    purchases = load_events(spark.spark_session, lake).where("type = 'purchase'")
    lines = purchases.select("order_id", "user_id", "ts", F.explode("items").alias("item")).select(
        "order_id",
        "user_id",
        F.col("item.product_id").alias("product_id"),
        F.col("item.quantity").alias("quantity"),
        F.col("item.price").alias("price"),
        "ts",
    )
    rows = overwrite(lines, lake.table("orders"))
    context.log.info(f"{rows} order lines")
    return MaterializeResult(metadata={"dagster/row_count": rows})
