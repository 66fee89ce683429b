"""Serving documents: bestsellers, similar items and per-user recommendations in MongoDB.

Every writer here follows recsys_core/documents.py. Recommendations are written with a guard:
a document the streaming layer refreshed after this run started is newer than anything this run
computed, so it is left alone.
"""

from datetime import UTC, datetime

from dagster import AssetExecutionContext, AssetKey, Config, MaterializeResult, asset
from dagster_pyspark import PySparkResource
from pymongo import ReplaceOne
from pymongo.errors import DuplicateKeyError

from recsys_assets.as_of import run_started_at
from recsys_assets.catalog import overwrite
from recsys_assets.resources import LakeResource, MongoResource
from recsys_core.bestsellers import as_documents
from recsys_core.documents import GLOBAL_SCOPE
from recsys_core.reasons import model as model_reason
from recsys_io.registry import current_model

WRITE_CHUNK = 500
# Every product of the batch's lists is the model's pick for the shopper (recsys_core.reasons).
MODEL_REASON = model_reason()


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


def publish_neighbours(table, mongo: MongoResource, source: str, model_version: str | None) -> int:
    """Group the neighbour table by product and upsert one similar_items document each."""
    now = datetime.now(UTC)
    by_product: dict[str, list] = {}
    for row in table.orderBy("product_id", "rank").toLocalIterator():
        by_product.setdefault(row.product_id, []).append({"product_id": row.neighbour_id, "score": float(row.score)})
    documents = [
        {
            "_id": p,
            "product_id": p,
            "neighbours": n,
            "source": source,
            "model_version": model_version,
            "computed_at": now,
        }
        for p, n in by_product.items()
    ]
    with mongo.db() as db:
        for start in range(0, len(documents), WRITE_CHUNK):
            db.similar_items.bulk_write(
                [ReplaceOne({"_id": d["_id"]}, d, upsert=True) for d in documents[start : start + WRITE_CHUNK]]
            )
    return len(documents)


class SimilarityConfig(Config):
    neighbours: int = 20


@asset(
    group_name="serving",
    deps=[AssetKey("current_model")],
    description="Top-K neighbours of every product by cosine similarity of the current model's item "
    "factors; Delta table and similar_items documents (source 'als').",
)
def item_similarities(
    config: SimilarityConfig, spark: PySparkResource, lake: LakeResource, mongo: MongoResource
) -> MaterializeResult:
    model = _current(mongo)
    factors = spark.spark_session.read.parquet(f"{model['path']}/item_factors")
    rows = overwrite(cosine_neighbours(factors, factors, config.neighbours), lake.table("item_similarities"))
    table = spark.spark_session.read.format("delta").load(lake.table("item_similarities"))
    documents = publish_neighbours(table, mongo, "als", model["_id"])
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


class RecommendationConfig(Config):
    top_n: int = 50


def write_recommendations(db, documents: list[dict], started: datetime) -> tuple[int, int]:
    """Upsert unless the stored document was computed after `started`: (written, kept fresher).

    Products the shopper's history lists as bought (purchases the speed layer saw after the
    `orders` table was built) are dropped too: the API serves these documents as they are.
    One guarded update per document: FerretDB answers a bulk write whose upsert hits a duplicate
    key without the counts pymongo needs, and the guard is what matters here.
    """
    ids = [d["_id"] for d in documents]
    fresher = {
        d["_id"] for d in db.recommendations.find({"_id": {"$in": ids}, "computed_at": {"$gte": started}}, {"_id": 1})
    }
    bought = {d["_id"]: set(d.get("purchased") or ()) for d in db.history.find({"_id": {"$in": ids}}, {"purchased": 1})}
    written = 0
    for document in documents:
        if document["_id"] in fresher:
            continue
        fields = {k: v for k, v in document.items() if k != "_id"}
        if bought.get(document["_id"]):
            fields["items"] = [i for i in fields["items"] if i["product_id"] not in bought[document["_id"]]]
        try:
            db.recommendations.update_one(
                {"_id": document["_id"], "computed_at": {"$lt": started}}, {"$set": fields}, upsert=True
            )
            written += 1
        except DuplicateKeyError:
            # The streaming layer wrote this user between our read and our write: keep its document.
            fresher.add(document["_id"])
    return written, len(fresher)


@asset(
    group_name="serving",
    deps=[AssetKey("current_model"), AssetKey("orders")],
    description="Top-N products for every user from the current model, minus products they bought, "
    "in the recommendations collection (strategy 'als'); never overwrites a document the "
    "streaming layer refreshed after this run started.",
)
def user_recommendations(
    context: AssetExecutionContext,
    config: RecommendationConfig,
    spark: PySparkResource,
    lake: LakeResource,
    mongo: MongoResource,
) -> MaterializeResult:
    from pyspark.ml.recommendation import ALSModel
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    started = run_started_at(context)
    model = _current(mongo)
    session = spark.spark_session
    als = ALSModel.load(f"{model['path']}/spark_model")
    users = session.read.parquet(f"{model['path']}/user_index")
    items = session.read.parquet(f"{model['path']}/item_index")
    bought = session.read.format("delta").load(lake.table("orders")).select("user_id", "product_id").distinct()
    # Ask for extra candidates so that removing purchases still leaves top_n for most users.
    candidates = (
        als.recommendForAllUsers(config.top_n * 2)
        .select("user", F.posexplode("recommendations").alias("pos", "rec"))
        .join(users, F.col("user") == users.idx)
        .select(F.col("id").alias("user_id"), "rec")
        .join(items, F.col("rec.item") == items.idx)
        .select("user_id", F.col("id").alias("product_id"), F.col("rec.rating").alias("score"))
    )
    order = Window.partitionBy("user_id").orderBy(F.desc("score"), F.asc("product_id"))
    top = (
        candidates.join(bought, ["user_id", "product_id"], "left_anti")
        .withColumn("rank", F.row_number().over(order))
        .where(F.col("rank") <= config.top_n)
    )
    rows = overwrite(top, lake.table("user_recommendations"))
    computed_at = datetime.now(UTC)
    written = kept = 0
    by_user: dict[str, list] = {}
    table = session.read.format("delta").load(lake.table("user_recommendations")).orderBy("user_id", "rank")
    for row in table.toLocalIterator():
        by_user.setdefault(row.user_id, []).append(
            {"product_id": row.product_id, "score": float(row.score), "reason": MODEL_REASON}
        )
    documents = [
        {
            "_id": u,
            "user_id": u,
            "items": items_,
            "strategy": "als",
            "model_version": model["_id"],
            "computed_at": computed_at,
            "last_event_ts": None,
        }
        for u, items_ in by_user.items()
    ]
    with mongo.db() as db:
        for start in range(0, len(documents), WRITE_CHUNK):
            w, k = write_recommendations(db, documents[start : start + WRITE_CHUNK], started)
            written, kept = written + w, kept + k
    context.log.info(f"{written} recommendation documents written, {kept} fresher ones kept")
    return MaterializeResult(
        metadata={
            "dagster/row_count": rows,
            "documents_written": written,
            "fresher_documents_kept": kept,
            "model_version": model["_id"],
        }
    )
