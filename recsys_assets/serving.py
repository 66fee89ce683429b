"""Serving documents: bestsellers, similar items and per-user recommendations in MongoDB.

Every writer here follows recsys_core/documents.py. Recommendations are written with a guard:
a document the streaming layer refreshed after this run started is newer than anything this run
computed, so it is left alone.
"""

from datetime import UTC, datetime
from pathlib import Path

from dagster import AssetExecutionContext, AssetKey, Config, MaterializeResult, asset
from dagster_pyspark import PySparkResource
from pymongo import ReplaceOne

from recsys_assets.as_of import run_started_at
from recsys_assets.catalog import overwrite
from recsys_assets.ease_scoring import product_neighbours, shopper_lists
from recsys_assets.ease_training import TrainedEase
from recsys_assets.publish import publish_neighbours, publish_recommendations
from recsys_assets.resources import LakeResource, MongoResource
from recsys_core.bestsellers import as_documents
from recsys_core.documents import GLOBAL_SCOPE
from recsys_io.registry import current_model


@asset(
    group_name="serving",
    deps=[AssetKey("bestsellers"), AssetKey("category_bestsellers")],
    description="Publishes the bestseller tables to the bestsellers collection: one document per scope "
    "(global and each category); scopes without sales in the window are removed.",
)
def bestseller_documents(spark: PySparkResource, lake: LakeResource, mongo: MongoResource) -> MaterializeResult:
    session = spark.spark_session
    scopes: dict[str, list] = {GLOBAL_SCOPE: []}
    window_days = lake.bestseller_window_days
    for row in session.read.format("delta").load(lake.table("bestsellers")).orderBy("rank").collect():
        scopes[GLOBAL_SCOPE].append({"product_id": row.product_id, "buyers": row.buyers})
        window_days = row.window_days
    ranked = session.read.format("delta").load(lake.table("category_bestsellers")).orderBy("category_id", "rank")
    for row in ranked.collect():
        scopes.setdefault(row.category_id, []).append({"product_id": row.product_id, "buyers": row.buyers})
    documents = as_documents(scopes, window_days, datetime.now(UTC))
    with mongo.db() as db:
        if documents:
            db.bestsellers.bulk_write([ReplaceOne({"_id": d["_id"]}, d, upsert=True) for d in documents])
        db.bestsellers.delete_many({"_id": {"$nin": list(scopes)}})
    return MaterializeResult(metadata={"documents": len(documents)})


def _current(mongo: MongoResource) -> dict:
    with mongo.db() as db:
        model = current_model(db)
    if model is None:
        from dagster import Failure

        raise Failure("no model is current yet: materialise als_model and current_model first")
    return model


def model_family(model: dict) -> str:
    """A version's model family; versions registered before EASE existed are ALS."""
    return str(model.get("family") or "als")


def with_norms(frame):
    from pyspark.sql import functions as F

    norm = F.sqrt(F.aggregate(F.transform("features", lambda x: x * x), F.lit(0.0), lambda a, b: a + b))
    return frame.withColumn("norm", norm).where("norm > 0")


def cosine_neighbours(queries, candidates, k: int):
    """DataFrame(product_id, neighbour_id, score, rank): each query's k most similar candidates."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    q = with_norms(queries).select(
        F.col("id").alias("product_id"), F.col("features").alias("qf"), F.col("norm").alias("qn")
    )
    c = with_norms(candidates).select(
        F.col("id").alias("neighbour_id"), F.col("features").alias("cf"), F.col("norm").alias("cn")
    )
    dot = F.aggregate(F.zip_with("qf", "cf", lambda a, b: a * b), F.lit(0.0), lambda a, b: a + b)
    pairs = (
        q.crossJoin(c)
        .where("product_id != neighbour_id")
        .select("product_id", "neighbour_id", (dot / (F.col("qn") * F.col("cn"))).alias("score"))
    )
    order = Window.partitionBy("product_id").orderBy(F.desc("score"), F.asc("neighbour_id"))
    return pairs.withColumn("rank", F.row_number().over(order)).where(F.col("rank") <= k)


class SimilarityConfig(Config):
    neighbours: int = 20


@asset(
    group_name="serving",
    deps=[AssetKey("current_model")],
    description="Top-K neighbours of every product from the current model: for ALS the cosine similarity of "
    "its item factors, for EASE the largest positive entries of the product's row of B; Delta table and "
    "similar_items documents (source: the model's family).",
)
def item_similarities(
    config: SimilarityConfig, spark: PySparkResource, lake: LakeResource, mongo: MongoResource
) -> MaterializeResult:
    model = _current(mongo)
    family = model_family(model)
    if family == "ease":
        ease = TrainedEase.load(Path(model["path"]))
        neighbours = product_neighbours(spark.spark_session, ease, config.neighbours)
    else:
        factors = spark.spark_session.read.parquet(f"{model['path']}/item_factors")
        neighbours = cosine_neighbours(factors, factors, config.neighbours)
    rows = overwrite(neighbours, lake.table("item_similarities"))
    table = spark.spark_session.read.format("delta").load(lake.table("item_similarities"))
    documents = publish_neighbours(table, mongo, family, model["_id"])
    return MaterializeResult(
        metadata={"dagster/row_count": rows, "documents": documents, "model_version": model["_id"]}
    )


@asset(
    group_name="serving",
    deps=[AssetKey("products"), AssetKey("interactions"), AssetKey("item_similarities")],
    description="Cold start: products nobody interacted with yet get neighbours by TF-IDF cosine over "
    "name and description (Spark ML); merged into similar_items with source 'content'.",
)
def content_similarities(
    config: SimilarityConfig, spark: PySparkResource, lake: LakeResource, mongo: MongoResource
) -> MaterializeResult:
    from pyspark.ml import Pipeline
    from pyspark.ml.feature import IDF, HashingTF, Normalizer, RegexTokenizer, StopWordsRemover
    from pyspark.ml.functions import vector_to_array
    from pyspark.sql import functions as F

    session = spark.spark_session
    catalog = (
        session.read.format("delta")
        .load(lake.table("products"))
        .select(
            F.col("product_id").alias("id"),
            F.concat_ws(" ", F.coalesce("name", F.lit("")), F.coalesce("description", F.lit(""))).alias("text"),
        )
    )
    pipeline = Pipeline(
        stages=[
            RegexTokenizer(inputCol="text", outputCol="words", pattern="\\W+"),
            StopWordsRemover(inputCol="words", outputCol="terms"),
            HashingTF(inputCol="terms", outputCol="tf", numFeatures=1 << 10),
            IDF(inputCol="tf", outputCol="tfidf"),
            Normalizer(inputCol="tfidf", outputCol="unit"),
        ]
    )
    vectors = (
        pipeline.fit(catalog).transform(catalog).select("id", vector_to_array("unit", "float32").alias("features"))
    )
    known = session.read.format("delta").load(lake.table("interactions")).select(F.col("product_id").alias("id"))
    cold = vectors.join(known.distinct(), "id", "left_anti")
    rows = overwrite(
        cosine_neighbours(cold, vectors, config.neighbours).where("score > 0"), lake.table("content_similarities")
    )
    table = session.read.format("delta").load(lake.table("content_similarities"))
    documents = publish_neighbours(table, mongo, "content", None)
    return MaterializeResult(
        metadata={"dagster/row_count": rows, "cold_products": cold.count(), "documents": documents}
    )


def als_lists(session, path: str, bought, top_n: int):
    """DataFrame(user_id, product_id, score, rank): ALS's top_n for every user, bought products removed."""
    from pyspark.ml.recommendation import ALSModel
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    als = ALSModel.load(f"{path}/spark_model")
    users = session.read.parquet(f"{path}/user_index")
    items = session.read.parquet(f"{path}/item_index")
    # Ask for extra candidates so that removing purchases still leaves top_n for most users.
    candidates = (
        als.recommendForAllUsers(top_n * 2)
        .select("user", F.posexplode("recommendations").alias("pos", "rec"))
        .join(users, F.col("user") == users.idx)
        .select(F.col("id").alias("user_id"), "rec")
        .join(items, F.col("rec.item") == items.idx)
        .select("user_id", F.col("id").alias("product_id"), F.col("rec.rating").alias("score"))
    )
    order = Window.partitionBy("user_id").orderBy(F.desc("score"), F.asc("product_id"))
    return (
        candidates.join(bought, ["user_id", "product_id"], "left_anti")
        .withColumn("rank", F.row_number().over(order))
        .where(F.col("rank") <= top_n)
    )


class RecommendationConfig(Config):
    top_n: int = 50


@asset(
    group_name="serving",
    deps=[AssetKey("current_model"), AssetKey("orders")],
    description="Top-N products for every user from the current model (ALS's recommendForAllUsers, or "
    "EASE's x_u · B scored in tasks), minus products they bought, in the recommendations collection "
    "(strategy: the model's family); never overwrites a document the streaming layer refreshed after "
    "this run started.",
)
def user_recommendations(
    context: AssetExecutionContext,
    config: RecommendationConfig,
    spark: PySparkResource,
    lake: LakeResource,
    mongo: MongoResource,
) -> MaterializeResult:
    started = run_started_at(context)
    model = _current(mongo)
    family = model_family(model)
    session = spark.spark_session
    bought = session.read.format("delta").load(lake.table("orders")).select("user_id", "product_id").distinct()
    if family == "ease":
        interactions = session.read.format("delta").load(lake.table("interactions"))
        ease = TrainedEase.load(Path(model["path"]))
        top = shopper_lists(ease, interactions.select("user_id", "product_id", "strength"), bought, config.top_n)
    else:
        top = als_lists(session, model["path"], bought, config.top_n)
    rows = overwrite(top, lake.table("user_recommendations"))
    table = session.read.format("delta").load(lake.table("user_recommendations"))
    written, kept = publish_recommendations(table, mongo, model["_id"], started, family)
    context.log.info(f"{written} recommendation documents written, {kept} fresher ones kept")
    return MaterializeResult(
        metadata={
            "dagster/row_count": rows,
            "documents_written": written,
            "fresher_documents_kept": kept,
            "model_version": model["_id"],
            "family": family,
        }
    )
