"""Implicit feedback, the versioned ALS model, its evaluation check and its promotion.

`als_model` searches a small grid of two model families, ALS and EASE, on the evaluation split
(per-user random 75/25, fixed seed, or by time), retrains the best candidate of either family on
every interaction and saves a new version that records its family. The blocking check
`als_beats_popularity` (named when ALS was the only family) fails when the chosen model does not
beat the popularity baseline on NDCG@k; a failed check stops the run before `current_model`, and
`promote_model` refuses a version whose checks did not pass, so a bad model never becomes current.
"""

import json
from datetime import UTC, datetime
from functools import partial

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetExecutionContext,
    AssetKey,
    Config,
    Failure,
    MaterializeResult,
    MetadataValue,
    OpExecutionContext,
    asset,
    asset_check,
    job,
    op,
)
from dagster_pyspark import PySparkResource

from recsys_assets.als_training import AlsParams, fit_als
from recsys_assets.as_of import AsOfConfig, run_as_of
from recsys_assets.catalog import overwrite
from recsys_assets.ease_training import EaseParams, fit_ease
from recsys_assets.evaluation import FAMILIES, SearchSpace, best_by_family, model_ndcg, search, split_frame
from recsys_assets.ingest import lake_totals, load_events
from recsys_assets.records import STRENGTH_SCHEMA, shopper_strengths
from recsys_assets.resources import LakeResource, MongoResource
from recsys_core.interactions import DEFAULT_WEIGHTS
from recsys_core.markdown import markdown_table
from recsys_core.metrics import METRIC_NAMES, SPLITS, metrics_table
from recsys_io.registry import (
    PromotionRefused,
    find_model,
    list_models,
    promote_model,
    record_checks,
    register_model,
    rollback_model,
    versions_table,
)

MIN_USERS = 3


class InteractionConfig(AsOfConfig):
    view_weight: float = DEFAULT_WEIGHTS["product_view"]
    add_to_cart_weight: float = DEFAULT_WEIGHTS["add_to_cart"]
    purchase_weight: float = DEFAULT_WEIGHTS["purchase"]
    half_life_days: float = 0.0
    """Halve an event's weight every this many days of its age at as_of; 0 disables the decay."""


@asset(
    group_name="model",
    deps=[AssetKey("raw_events")],
    description="User x product implicit feedback as of the run's time (recsys_core.interactions): summed "
    "event weights (view 1, add_to_cart 3, purchase 5, rating its score; configurable), "
    "optionally decayed; a history_delete removes the pair's earlier events. Delta: user_id, "
    "product_id, strength, last_ts, events.",
)
def interactions(
    context: AssetExecutionContext, config: InteractionConfig, spark: PySparkResource, lake: LakeResource
) -> MaterializeResult:
    from pyspark.sql import functions as F

    session = spark.spark_session
    as_of = run_as_of(context, config)
    weights = {
        "product_view": config.view_weight,
        "add_to_cart": config.add_to_cart_weight,
        "purchase": config.purchase_weight,
    }
    # Each shopper's events together in one partition: the rule is applied to a shopper at a time.
    events = (
        load_events(session, lake)
        .select(
            "user_id",
            "type",
            F.unix_micros("ts").alias("ts_us"),
            "product_id",
            "score",
            F.col("items.product_id").alias("item_ids"),
        )
        .repartition("user_id")
        .sortWithinPartitions("user_id")
    )
    strengths = events.rdd.mapPartitions(
        partial(shopper_strengths, as_of=as_of, weights=weights, half_life_days=config.half_life_days)
    )
    rows = overwrite(session.createDataFrame(strengths, STRENGTH_SCHEMA), lake.table("interactions"))
    context.log.info(f"{rows} user-product pairs as of {as_of.isoformat()}")
    return MaterializeResult(metadata={"dagster/row_count": rows, "as_of": as_of.isoformat()})


class ModelConfig(Config):
    rank: int = AlsParams.rank
    reg_param: float = AlsParams.reg_param
    alpha: float = AlsParams.alpha
    max_iter: int = AlsParams.max_iter
    checkpoint_interval: int = AlsParams.checkpoint_interval
    search_ranks: list[int] = list(SearchSpace.ranks)
    search_reg_params: list[float] = list(SearchSpace.reg_params)
    search_alphas: list[float] = list(SearchSpace.alphas)
    search_budget_seconds: float = SearchSpace.budget_seconds
    """No new trial starts after this many seconds (at least one always runs); the families take turns."""
    families: list[str] = list(FAMILIES)
    """Model families the search may pick: als, ease."""
    search_ease_l2s: list[float] = list(SearchSpace.ease_l2s)
    """EASE's λ, relative to the mean of diag(XᵀX)."""
    search_ease_binary: list[bool] = list(SearchSpace.ease_binary)
    split: str = "random"
    """random: per-user 75/25 with a fixed seed; time: each user's newest 25% held out."""
    k: int = 10


LABELS = {"als": "ALS", "ease": "EASE", "popularity": "popularity"}


def plotted_metrics(metrics: dict, k: int) -> dict[str, float]:
    """Each model's figures as numbers, which the UI plots across materialisations."""
    return {
        f"{model}_{name}" + (f"@{k}" if name in METRIC_NAMES else ""): round(value, 4)
        for model in (*FAMILIES, "popularity")
        for name, value in (metrics.get(model) or {}).items()
        if value is not None
    }


def evaluation_table(metrics: dict, k: int) -> str:
    """The chosen model first, then the other family's best and popularity."""
    chosen = metrics.get("family", "als")
    order = [chosen, *(f for f in FAMILIES if f != chosen), "popularity"]
    rows = {LABELS[m] + (" (chosen)" if m == chosen else ""): metrics[m] for m in order if metrics.get(m)}
    return metrics_table(rows, k)


def _trials_table(trials, k: int) -> str:
    return markdown_table(
        ["family", "parameters", f"NDCG@{k}", "seconds"],
        [[t["family"], t["params"].label(), f"{model_ndcg(t):.4f}", f"{t['seconds']:.1f}"] for t in trials],
    )


def save_version(session, frame, params, path) -> float:
    """Retrain `params`' family on every interaction and write it under `path`: its training seconds.

    ALS: user and item factors as Parquet (what the streaming job loads), the Spark model and the
    id numbering. EASE: B and its product ids (ease_training.TrainedEase.save).
    """
    interactions = frame.select("user_id", frame.product_id.alias("item_id"), "strength")
    if isinstance(params, EaseParams):
        ease = fit_ease(interactions, params)
        ease.save(path)
        return ease.seconds
    trained = fit_als(interactions, params)
    trained.factors("user").write.parquet(str(path / "user_factors"))
    trained.factors("item").write.parquet(str(path / "item_factors"))
    trained.model.save(str(path / "spark_model"))
    trained.users.write.parquet(str(path / "user_index"))
    trained.items.write.parquet(str(path / "item_index"))
    return trained.seconds


@asset(
    group_name="model",
    deps=[AssetKey("interactions")],
    description="A new model version: Spark MLlib ALS (implicitPrefs) or EASE, whichever family and "
    "parameters the search picked by NDCG@k, under RECSYS_DATA_DIR/models/als/<version> (ALS: user and "
    "item factors as Parquet; EASE: B as ease/weights.npy), registered (unpromoted) in the models "
    "collection with its family.",
)
def als_model(
    context: AssetExecutionContext,
    config: ModelConfig,
    spark: PySparkResource,
    lake: LakeResource,
    mongo: MongoResource,
) -> MaterializeResult:
    from pyspark.sql import functions as F

    session = spark.spark_session
    session.sparkContext.setCheckpointDir(str(lake.checkpoint_dir))
    frame = session.read.format("delta").load(lake.table("interactions"))
    sizes = frame.agg(
        F.countDistinct("user_id").alias("users"),
        F.countDistinct("product_id").alias("products"),
        F.count("*").alias("pairs"),
    ).first()
    if sizes.users < MIN_USERS:
        raise Failure(
            f"only {sizes.users} users have interactions; ALS needs at least {MIN_USERS}. "
            "Materialise raw_events for the days with events first."
        )
    base = AlsParams(config.rank, config.reg_param, config.alpha, config.max_iter, config.checkpoint_interval)
    unknown = set(config.families) - set(FAMILIES)
    if unknown or not config.families:
        raise Failure(f"families are {config.families}; choose among {', '.join(FAMILIES)}")
    space = SearchSpace(
        tuple(config.search_ranks) or (base.rank,),
        tuple(config.search_reg_params) or (base.reg_param,),
        tuple(config.search_alphas) or (base.alpha,),
        config.search_budget_seconds,
        tuple(config.families),
        tuple(config.search_ease_l2s) or (EaseParams.l2,),
        tuple(config.search_ease_binary) or (EaseParams.binary,),
    )
    if config.split not in SPLITS:
        raise Failure(f"split is {config.split!r}; expected one of {', '.join(SPLITS)}")
    interactions = frame.select(
        "user_id",
        F.col("product_id").alias("item_id"),
        F.col("strength").alias("weight"),
        (F.unix_micros("last_ts") / 1e6).alias("ts"),
    )
    split = split_frame(interactions, config.split)
    categories = None
    if lake.exists("products"):
        products = session.read.format("delta").load(lake.table("products"))
        categories = products.select(F.col("product_id").alias("item_id"), "category_id")
    params, best, trials = search(split, space, base, config.k, context.log.info, categories)

    context.log.info(f"picked {params.label()}: NDCG@{config.k} {model_ndcg(best):.4f}")
    version = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    path = lake.model_dir(version)
    seconds = save_version(session, frame, params, path)
    raw_total, shopper_total = lake_totals(load_events(session, lake))

    metrics = {
        "family": params.family,
        # Each family's best trial, so a version shows what the other family reached.
        **{family: trial[family] for family, trial in best_by_family(trials).items()},
        "popularity": best["popularity"],
        "k": config.k,
        "split": config.split,
        "training_seconds": seconds,
        "users": sizes.users,
        "items": sizes.products,
        "interactions": sizes.pairs,
        "raw_events": raw_total,
    }
    with mongo.db() as db:
        register_model(
            db,
            {
                "_id": version,
                "version": version,
                "family": params.family,
                "params": params.as_dict(),
                "metrics": metrics,
                "checks_passed": None,
                "promoted": False,
                "promoted_at": None,
                "created_at": datetime.now(UTC),
                "path": str(path),
            },
        )
    return MaterializeResult(
        metadata={
            "version": version,
            "family": params.family,
            "path": str(path),
            "params": MetadataValue.json(params.as_dict()),
            "training_seconds": round(seconds, 2),
            "users": sizes.users,
            "items": sizes.products,
            "interactions": sizes.pairs,
            "raw_events_total": raw_total,
            "shopper_events_total": shopper_total,
            "metrics": MetadataValue.md(evaluation_table(metrics, config.k)),
            **plotted_metrics(metrics, config.k),
            "search": MetadataValue.md(_trials_table(trials, config.k)),
        }
    )


def latest_version(instance) -> str:
    event = instance.get_latest_materialization_event(AssetKey("als_model"))
    if event is None or event.asset_materialization is None:
        raise Failure("als_model has never been materialised")
    return str(event.asset_materialization.metadata["version"].value)


@asset_check(
    asset="als_model",
    blocking=True,
    description="The chosen model (ALS or EASE) must beat the popularity baseline on NDCG@k on the evaluation "
    "split; blocks promotion otherwise.",
)
def als_beats_popularity(context: AssetCheckExecutionContext, mongo: MongoResource) -> AssetCheckResult:
    version = latest_version(context.instance)
    with mongo.db() as db:
        document = find_model(db, version) or {}
        metrics = document.get("metrics") or {}
        family = metrics.get("family", "als")  # versions from before EASE are ALS
        model = (metrics.get(family) or {}).get("ndcg", 0.0)
        popularity = (metrics.get("popularity") or {}).get("ndcg", 0.0)
        passed = model > popularity
        record_checks(db, version, passed)
    k = metrics.get("k", 10)
    return AssetCheckResult(
        passed=passed,
        metadata={
            "version": version,
            "family": family,
            f"ndcg@{k}_{family}": model,
            f"ndcg@{k}_popularity": popularity,
            "metrics": MetadataValue.md(evaluation_table(metrics, k) if metrics else "no metrics recorded"),
        },
    )


@asset(
    group_name="model",
    deps=[AssetKey("als_model")],
    description="The current model: the newest ALS version, promoted in the models collection once its "
    "checks passed. The streaming job and the serving assets use this version.",
)
def current_model(context: AssetExecutionContext, mongo: MongoResource) -> MaterializeResult:
    version = latest_version(context.instance)
    with mongo.db() as db:
        try:
            promoted = promote_model(db, version)
        except PromotionRefused as error:
            raise Failure(str(error)) from None
        table = versions_table(list_models(db)[:20])
    context.log.info(f"model {version} is now current")
    return MaterializeResult(
        metadata={
            "version": version,
            "path": promoted["path"],
            "versions": MetadataValue.md(table),
            "params": MetadataValue.json(json.loads(json.dumps(promoted["params"]))),
        }
    )


class RollbackConfig(Config):
    to: str = ""
    """Version to return to; empty: the newest older version that passed its checks."""


@op(description="Make an older model version current again (the newer one is kept).")
def roll_back_current_model(context: OpExecutionContext, config: RollbackConfig, mongo: MongoResource) -> None:
    with mongo.db() as db:
        try:
            document = rollback_model(db, config.to or None)
        except PromotionRefused as error:
            raise Failure(str(error)) from None
    context.log.info(f"model {document['_id']} is current again")


@job(description="Roll the current model back, from the UI's Launchpad (same as `recsys model rollback`).")
def rollback_model_job():
    roll_back_current_model()
