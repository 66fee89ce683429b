"""The weight the served recommendations blend each shopper's buy_again list in at, chosen on the shop's orders.

The choice is the validation part of the evaluation that counts repeats (repeat_evaluation): each
shopper's last order set aside, their last order before it held out, one model of the current
version's family and parameters fitted on the rest, and the weight with the best NDCG@k among
the protocol's kept (ties to the smaller). A shop where no product clears buy_again's repeat-rate
threshold has nothing to blend in, so its weight is 0 without fitting anything. The weight and
each weight's NDCG go to the `blend_weights` collection, which the API reads (recsys_api.blend).

It costs a model fit, so it runs with the model's retrain (model_refresh), not every hour.
"""

from datetime import UTC, datetime

from dagster import AssetExecutionContext, AssetKey, MaterializeResult, MetadataValue, asset
from dagster_pyspark import PySparkResource

from recsys_assets.als_training import AlsParams
from recsys_assets.buy_again import shop_purchases
from recsys_assets.evaluation import ModelParams, params_of
from recsys_assets.repeat_evaluation import (
    RepeatProtocol,
    product_repeat_rates,
    split_last_orders,
    validation_ndcg,
)
from recsys_assets.resources import LakeResource, MongoResource
from recsys_core.markdown import markdown_table
from recsys_core.repeats import BUY_AGAIN, best_weight, can_buy_again, shop_repeat_rate
from recsys_io.mongo import BLEND_WEIGHTS
from recsys_io.registry import current_model


def _served_params(mongo: MongoResource) -> ModelParams:
    """The current version's family and parameters (the model the weight blends with); ALS's defaults before one."""
    with mongo.db() as db:
        model = current_model(db, ["family", "params"])
    return AlsParams() if model is None else params_of(model["family"], model.get("params") or {})


@asset(
    group_name="model",
    deps=[AssetKey("orders"), AssetKey("current_model")],
    description="The weight the API blends each shopper's buy_again list into their recommendations at "
    "(unless RECSYS_BUY_AGAIN_WEIGHT is set): the blend weight with the best NDCG@k on a validation split "
    "of the shop's orders (0 when no product is bought again), in the blend_weights collection. Metadata: "
    "the weight, each weight's validation NDCG, the shop's repeat rate.",
)
def buy_again_weight(
    context: AssetExecutionContext, spark: PySparkResource, lake: LakeResource, mongo: MongoResource
) -> MaterializeResult:
    session = spark.spark_session
    session.sparkContext.setCheckpointDir(str(lake.checkpoint_dir))  # ALS checkpoints its lineage, as als_model's
    protocol = RepeatProtocol()
    purchases = shop_purchases(session, lake).cache()
    try:
        rates = product_repeat_rates(purchases)
        ndcg: dict[float, float] = {}
        if can_buy_again(rates, protocol.min_rate):
            params = _served_params(mongo)
            context.log.info(f"choosing the buy_again weight on a validation split, fitting {params.label()}")
            # Read once, by the validation split that validation_ndcg carves out of it (and caches).
            ndcg = validation_ndcg(split_last_orders(purchases), params, protocol)
    finally:
        purchases.unpersist()
    weight = best_weight(ndcg) if ndcg else 0.0
    shop_rate = shop_repeat_rate(rates)
    with mongo.db() as db:
        db[BLEND_WEIGHTS].replace_one(
            {"_id": BUY_AGAIN},
            {
                "_id": BUY_AGAIN,
                "weight": weight,
                "validation_ndcg": [{"weight": w, "ndcg": v} for w, v in ndcg.items()],
                "k": protocol.k,
                "share_of_products_bought_again": shop_rate,
                "computed_at": datetime.now(UTC),
            },
            upsert=True,
        )
    context.log.info(
        f"buy_again weight {weight:g}"
        + ("" if ndcg else f"; no product's repeat rate reaches {protocol.min_rate:g}, nothing to blend in")
    )
    return MaterializeResult(
        metadata={
            "weight": weight,
            "validation_ndcg": MetadataValue.md(
                markdown_table(["weight", f"NDCG@{protocol.k}"], [[f"{w:g}", f"{v:.4f}"] for w, v in ndcg.items()])
            ),
            "share_of_products_bought_again": shop_rate,
        }
    )
