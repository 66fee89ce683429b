"""Experiment results: each started experiment's figures per variant and its decision, from online_metrics.

Lists, products shown, clicks and orders are summed over the experiment's rows of the
online_metrics table, and its shoppers counted from the impressions, both in Spark; the few
aggregated rows go through recsys_core.experiments.experiment_results, and the results and decision
are stored on the experiment's document, where GET /v1/experiments/{name} reads them. The check
warns when a variant's CTR is significantly below the first variant's. `promote_experiment_winner_job`
promotes the winning variant's model version, as `recsys experiment promote NAME` does.
"""

from datetime import UTC, datetime

from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetKey,
    AssetSpec,
    Config,
    Failure,
    MaterializeResult,
    MetadataValue,
    OpExecutionContext,
    job,
    multi_asset,
    op,
)
from dagster_pyspark import PySparkResource

from recsys_assets.resources import LakeResource, MongoResource
from recsys_core.experiments import Experiment, VariantCounts, experiment_results, significantly_worse
from recsys_core.markdown import markdown_table
from recsys_io.mongo import EXPERIMENTS
from recsys_io.registry import PromotionRefused, promote_experiment_winner


def variant_counts(session, lake: LakeResource, experiment: Experiment) -> list[VariantCounts]:
    """Each variant's counts, in the definition's order (the first is the one the others are compared with)."""
    from pyspark.sql import functions as F

    sums: dict[str, dict] = {}
    if lake.exists("online_metrics"):
        metrics = session.read.format("delta").load(lake.table("online_metrics"))
        for row in (
            metrics.where(F.col("experiment") == experiment.name)
            .groupBy("variant")
            .agg(*(F.sum(c).alias(c) for c in ("lists", "products_shown", "clicks", "orders")))
            .collect()
        ):
            sums[row.variant] = row.asDict()
    shoppers: dict[str, int] = {}
    if lake.exists("impressions"):
        shown = session.read.format("delta").load(lake.table("impressions"))
        for row in (
            shown.where(F.col("experiment") == experiment.name)
            .groupBy("variant")
            .agg(F.countDistinct("user_id").alias("shoppers"))
            .collect()
        ):
            shoppers[row.variant] = row.shoppers
    return [
        VariantCounts(
            variant=v.name,
            shoppers=shoppers.get(v.name, 0),
            lists=int((sums.get(v.name) or {}).get("lists") or 0),
            products_shown=int((sums.get(v.name) or {}).get("products_shown") or 0),
            clicks=int((sums.get(v.name) or {}).get("clicks") or 0),
            orders=int((sums.get(v.name) or {}).get("orders") or 0),
        )
        for v in experiment.variants
    ]


def _results_table(name: str, rows: list[dict]) -> str:
    return markdown_table(
        ["experiment", "variant", "shoppers", "lists", "clicks", "CTR", "CTR vs first", "p"],
        [
            [
                name,
                r["variant"],
                r["shoppers"],
                r["lists"],
                r["clicks"],
                f"{r['ctr']:.4f}",
                "" if r["ctr_difference"] is None else f"{r['ctr_difference']:+.4f}",
                "" if r["p_value"] is None else f"{r['p_value']:.4f}",
            ]
            for r in rows
        ],
    )


@multi_asset(
    specs=[
        AssetSpec(
            "experiment_results",
            group_name="online_metrics",
            deps=[AssetKey("online_metrics"), AssetKey("impressions")],
            description="Each started experiment's shoppers, lists, clicks, CTR, orders and conversion per variant, "
            "the CTR difference to the first variant with its 95 % interval and p-value, and the decision "
            "(`winner: VARIANT` or `no difference yet`), stored on the experiment's document in the serving store.",
        )
    ],
    check_specs=[
        AssetCheckSpec(
            "no_variant_significantly_worse",
            asset="experiment_results",
            description="Warns when a variant's CTR is significantly below the first variant's (p < 0.05).",
        )
    ],
)
def experiment_results_asset(
    context: AssetExecutionContext, spark: PySparkResource, lake: LakeResource, mongo: MongoResource
):
    session = spark.spark_session
    now = datetime.now(UTC)
    with mongo.db() as db:
        experiments = [Experiment.from_document(d) for d in db[EXPERIMENTS].find({})]
    started = [e for e in experiments if e.status(now) != "scheduled"]
    tables, decisions, worse = [], {}, {}
    for experiment in started:
        rows, decision = experiment_results(variant_counts(session, lake, experiment))
        with mongo.db() as db:
            db[EXPERIMENTS].update_one(
                {"_id": experiment.name},
                {"$set": {"results": rows, "decision": decision, "results_computed_at": now}},
            )
        decisions[experiment.name] = decision
        if significantly_worse(rows):
            worse[experiment.name] = significantly_worse(rows)
        tables.append(_results_table(experiment.name, rows))
        context.log.info(f"{experiment.name}: {decision}")
    yield MaterializeResult(
        asset_key="experiment_results",
        metadata={
            "experiments": len(started),
            "winners": sum(1 for d in decisions.values() if d.startswith("winner")),
            "decisions": MetadataValue.json(decisions),
            "results": MetadataValue.md("\n\n".join(tables) or "no experiment has started"),
        },
    )
    yield AssetCheckResult(
        asset_key="experiment_results",
        check_name="no_variant_significantly_worse",
        passed=not worse,
        severity=AssetCheckSeverity.WARN,
        metadata={"worse": MetadataValue.json(worse)},
    )


class PromoteWinnerConfig(Config):
    experiment: str
    """The experiment whose winning variant's model version becomes current."""


@op(description="Promote the winning variant's model version of an experiment (its checks must have passed).")
def promote_winner(context: OpExecutionContext, config: PromoteWinnerConfig, mongo: MongoResource) -> None:
    with mongo.db() as db:
        try:
            document = promote_experiment_winner(db, config.experiment)
        except PromotionRefused as error:
            raise Failure(str(error)) from None
    context.log.info(f"model {document['_id']} is current, the winner of {config.experiment}")


@job(description="Promote an experiment's winning model from the Launchpad (as `recsys experiment promote`).")
def promote_experiment_winner_job():
    promote_winner()
