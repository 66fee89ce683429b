"""Online metrics: what the served lists achieved each day, from the lake's impressions, clicks and orders.

`impressions` and `clicks` are the day's served lists and clicks out of raw_events.
`attributed_orders` applies recsys_core.attribution to each shopper's clicks and purchases in
Spark tasks (records.shopper_attributions), reading the days before as far back as the
attribution window reaches, and keeps the order lines purchased on the day. `online_metrics`
counts them per day x surface x strategy x model_version x experiment x variant in Spark; only
those aggregated rows reach the driver, where recsys_core.online_metrics turns them into the
published figures, written to Delta and to the serving store's `online_metrics` collection.
"""

from datetime import date, timedelta
from functools import partial

from dagster import (
    AssetExecutionContext,
    AssetKey,
    AssetsDefinition,
    BackfillPolicy,
    DailyPartitionsDefinition,
    MaterializeResult,
    asset,
)
from dagster_pyspark import PySparkResource
from pymongo import InsertOne

from recsys_assets.ingest import replace_days
from recsys_assets.records import ATTRIBUTED_SCHEMA, shopper_attributions
from recsys_assets.resources import LakeResource, MongoResource
from recsys_core.online_metrics import DIMENSIONS, ListCounts, lookback_days, metric_figures, totals
from recsys_io.mongo import ONLINE_METRICS

GROUP = "online_metrics"
IMPRESSION_COLUMNS = ("rec_id", "user_id", "ts", "products", *DIMENSIONS, "day")
CLICK_COLUMNS = ("event_id", "user_id", "product_id", "rec_id", "ts", "day")


def raw_days(session, lake: LakeResource, first: str, last: str):
    """raw_events of the days first..last (empty with raw_events' columns before any ingest)."""
    from pyspark.sql import functions as F

    from recsys_assets.ingest import load_events

    return load_events(session, lake).where(F.col("day").between(F.lit(first).cast("date"), F.lit(last).cast("date")))


def earlier(day: str, days: int) -> str:
    return (date.fromisoformat(day) - timedelta(days=days)).isoformat()


def table_days(session, lake: LakeResource, name: str, first: str, last: str, schema: str):
    from pyspark.sql import functions as F

    if not lake.exists(name):
        return session.createDataFrame([], schema)
    frame = session.read.format("delta").load(lake.table(name))
    return frame.where(F.col("day").between(F.lit(first).cast("date"), F.lit(last).cast("date")))


def events_of_type(
    context: AssetExecutionContext, spark: PySparkResource, lake: LakeResource, kind: str, columns, table: str
) -> MaterializeResult:
    """The run's days of raw_events of one `kind`, with `columns`, written to the Delta `table` by day."""
    keys = context.partition_key_range
    rows = raw_days(spark.spark_session, lake, keys.start, keys.end).where(f"type = '{kind}'").select(*columns)
    replace_days(rows, lake.table(table), keys.start, keys.end)
    return MaterializeResult(metadata={"dagster/row_count": rows.count()})


def metrics_assets(partitions: DailyPartitionsDefinition, window: timedelta) -> list[AssetsDefinition]:
    """impressions, clicks, attributed_orders and online_metrics over the daily `partitions` of raw_events."""
    daily = dict(partitions_def=partitions, backfill_policy=BackfillPolicy.single_run(), group_name=GROUP)
    lookback = lookback_days(window)

    @asset(
        **daily,
        deps=[AssetKey("raw_events")],
        description="Every list the API served on the day (one impression per rec_id): rec_id, user_id, ts, "
        "products in the order shown, surface, strategy, model_version, experiment, variant. Delta, by day.",
    )
    def impressions(context: AssetExecutionContext, spark: PySparkResource, lake: LakeResource) -> MaterializeResult:
        return events_of_type(context, spark, lake, "impression", IMPRESSION_COLUMNS, "impressions")

    @asset(
        **daily,
        deps=[AssetKey("raw_events")],
        description="Every click on a served list's product on the day: event_id, user_id, product_id, rec_id "
        "(the list it was clicked in), ts. Delta, by day.",
    )
    def clicks(context: AssetExecutionContext, spark: PySparkResource, lake: LakeResource) -> MaterializeResult:
        return events_of_type(context, spark, lake, "click", CLICK_COLUMNS, "clicks")

    @asset(
        **daily,
        deps=[AssetKey("raw_events")],
        description="Order lines purchased on the day that are owed to a clicked list (recsys_core.attribution: "
        "a purchase at most RECSYS_ATTRIBUTION_WINDOW_HOURS after a click on the product, last click wins): "
        "user_id, order_id, product_id, quantity, price, purchased_at, rec_id, clicked_at. Delta, by day.",
    )
    def attributed_orders(
        context: AssetExecutionContext, spark: PySparkResource, lake: LakeResource
    ) -> MaterializeResult:
        from pyspark.sql import functions as F

        keys = context.partition_key_range
        session = spark.spark_session
        # The clicks a purchase can be owed to start up to the window before the first day.
        events = (
            raw_days(session, lake, earlier(keys.start, lookback), keys.end)
            .where("type in ('click', 'purchase')")
            .select(
                "user_id",
                "type",
                F.unix_micros("ts").alias("ts_us"),
                "product_id",
                "rec_id",
                "order_id",
                "items",
                "kafka_partition",
                "kafka_offset",
            )
            .repartition("user_id")
            .sortWithinPartitions("user_id", "ts_us", "kafka_partition", "kafka_offset")
        )
        lines = session.createDataFrame(
            events.rdd.mapPartitions(partial(shopper_attributions, window=window)), ATTRIBUTED_SCHEMA
        ).where(F.col("day").between(F.lit(keys.start).cast("date"), F.lit(keys.end).cast("date")))
        replace_days(lines, lake.table("attributed_orders"), keys.start, keys.end)
        written = table_days(session, lake, "attributed_orders", keys.start, keys.end, ATTRIBUTED_SCHEMA)
        return MaterializeResult(metadata={"dagster/row_count": written.count()})

    @asset(
        **daily,
        deps=[AssetKey("impressions"), AssetKey("clicks"), AssetKey("attributed_orders"), AssetKey("products")],
        description="Per day x surface x strategy x model_version x experiment x variant: lists, products_shown, "
        "clicks, ctr (clicks / products shown), orders (attributed), conversion (orders / lists), revenue "
        "(attributed, price x quantity), coverage (distinct products shown / catalog). Delta by day, and the "
        "online_metrics collection the API's GET /v1/metrics/online reads.",
    )
    def online_metrics(
        context: AssetExecutionContext, spark: PySparkResource, lake: LakeResource, mongo: MongoResource
    ) -> MaterializeResult:
        keys = context.partition_key_range
        session = spark.spark_session
        rows = metric_rows(session, lake, keys.start, keys.end, lookback)
        from pyspark.sql import functions as F

        frame = session.createDataFrame(rows, METRICS_SCHEMA)
        replace_days(frame.withColumn("day", F.to_date("day")), lake.table("online_metrics"), keys.start, keys.end)
        publish_metrics(mongo, rows, keys.start, keys.end)
        overall = totals(rows)
        context.log.info(f"{keys.start}..{keys.end}: {len(rows)} rows, {overall}")
        return MaterializeResult(
            metadata={"dagster/row_count": len(rows), **{k: round(float(v), 6) for k, v in overall.items()}}
        )

    return [impressions, clicks, attributed_orders, online_metrics]


METRICS_SCHEMA = (
    "day string, surface string, strategy string, model_version string, experiment string, variant string, "
    "lists long, products_shown long, clicks long, ctr double, orders long, conversion double, "
    "revenue double, coverage double"
)


def metric_rows(session, lake: LakeResource, first: str, last: str, lookback: int) -> list[dict]:
    """The published rows of the days first..last: counted in Spark, figures by recsys_core.online_metrics."""
    from pyspark.sql import functions as F

    impression_schema = (
        "rec_id string, user_id string, ts timestamp, products array<string>, surface string, strategy string, "
        "model_version string, experiment string, variant string, day date"
    )
    shown = table_days(session, lake, "impressions", first, last, impression_schema)
    # A click or an order takes the dimensions of the list it was made in, which may be from an earlier day.
    served = table_days(session, lake, "impressions", earlier(first, lookback), last, impression_schema).select(
        "rec_id", *DIMENSIONS
    )
    clicked = table_days(session, lake, "clicks", first, last, "rec_id string, day date").select("rec_id", "day")
    ordered = table_days(session, lake, "attributed_orders", first, last, ATTRIBUTED_SCHEMA)
    none = F.lit(None)
    parts = [
        shown.select(
            "day",
            *DIMENSIONS,
            F.col("rec_id").alias("list_id"),
            F.explode_outer("products").alias("shown_id"),
            none.cast("int").alias("click"),
            none.cast("string").alias("order_id"),
            none.cast("double").alias("amount"),
        ),
        clicked.join(served, "rec_id", "left").select(
            "day",
            *DIMENSIONS,
            none.cast("string").alias("list_id"),
            none.cast("string").alias("shown_id"),
            F.lit(1).alias("click"),
            none.cast("string").alias("order_id"),
            none.cast("double").alias("amount"),
        ),
        ordered.join(served, "rec_id", "left").select(
            "day",
            *DIMENSIONS,
            none.cast("string").alias("list_id"),
            none.cast("string").alias("shown_id"),
            none.cast("int").alias("click"),
            "order_id",
            (F.col("price") * F.col("quantity")).alias("amount"),
        ),
    ]
    union = parts[0].unionByName(parts[1]).unionByName(parts[2])
    counted = union.groupBy("day", *DIMENSIONS).agg(
        F.countDistinct("list_id").alias("lists"),
        F.count("shown_id").alias("products_shown"),
        F.countDistinct("shown_id").alias("distinct_shown"),
        F.count("click").alias("clicks"),
        F.countDistinct("order_id").alias("orders"),
        F.coalesce(F.sum("amount"), F.lit(0.0)).alias("revenue"),
    )
    catalog_size = session.read.format("delta").load(lake.table("products")).count() if lake.exists("products") else 0
    rows = []
    for row in counted.orderBy("day", *DIMENSIONS).collect():  # one row per group: the small aggregated frame
        counts = ListCounts(row.lists, row.products_shown, row.distinct_shown, row.clicks, row.orders, row.revenue)
        rows.append(
            {
                "day": row.day.isoformat(),
                **{name: row[name] for name in DIMENSIONS},
                **metric_figures(counts, catalog_size),
            }
        )
    return rows


def metrics_id(row: dict) -> str:
    return "|".join([row["day"], *(row[name] or "" for name in DIMENSIONS)])


def publish_metrics(mongo: MongoResource, rows: list[dict], first: str, last: str) -> None:
    """Make the collection's days first..last hold exactly `rows` (one bulk write)."""
    with mongo.db() as db:
        db[ONLINE_METRICS].delete_many({"day": {"$gte": first, "$lte": last}})
        if rows:
            db[ONLINE_METRICS].bulk_write([InsertOne({"_id": metrics_id(r), **r}) for r in rows])
