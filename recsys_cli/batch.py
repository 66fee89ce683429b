"""`recsys materialize`, `recsys evaluate`, `recsys model ...`: the batch layer from the command line."""

from __future__ import annotations

import json
import os
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import typer

from recsys_cli.common import fail, friendly_errors, settings, with_serving_db

EPHEMERAL_JOB = "__ephemeral_asset_job__"  # the name dagster.materialize gives its runs

model_app = typer.Typer(
    help="Model versions in the serving store: list them, promote one, roll back.", no_args_is_help=True
)


def _days(partition: str | None, start: str | None, end: str | None) -> list[str]:
    try:
        if partition:
            return [date.fromisoformat(partition).isoformat()]
        if start or end:
            first = date.fromisoformat(start or end)
            last = date.fromisoformat(end or start)
            if last < first:
                fail(f"--to {last} is before --from {first}", code=2)
            return [(first + timedelta(days=i)).isoformat() for i in range((last - first).days + 1)]
    except ValueError as error:
        fail(f"days are YYYY-MM-DD ({error})", code=2)
    return [datetime.now(UTC).date().isoformat()]


def _selected(selection: list[str], keys: list[str], groups: dict[str, list[str]]) -> list[str]:
    if not selection:
        return keys
    chosen: list[str] = []
    for item in selection:
        names = groups.get(item.removeprefix("group:")) if item.startswith("group:") else [item]
        unknown = [n for n in names or [item] if n not in keys]
        if names is None or unknown:
            fail(
                f"unknown asset or group {item!r}; assets: {', '.join(keys)}; groups: "
                f"{', '.join('group:' + g for g in groups)}",
                code=2,
            )
        chosen += [n for n in names if n not in chosen]
    return chosen


def _phases(
    chosen: list[str], partitioned: list[tuple[str, ...]], deps: dict[str, list[str]]
) -> tuple[list[str], list[str], list[str]]:
    """The selection in three runs, in dependency order: the unpartitioned assets the daily ones
    read (erasures before raw_events), the daily-partitioned ones, then every other asset.

    `partitioned` holds the keys of each partitioned step (a step writing several, such as
    raw_events with quarantined_events, runs only as a whole); `deps` each key's upstream keys.
    """
    daily = [key for step in partitioned if any(k in chosen for k in step) for key in step]

    def upstream(keys: list[str]) -> set[str]:
        found: set[str] = set()
        stack = list(keys)
        while stack:
            for dep in deps.get(stack.pop(), []):
                if dep not in found:
                    found.add(dep)
                    stack.append(dep)
        return found

    feeding = upstream(daily)
    before = [k for k in chosen if k in feeding and k not in daily]
    rest = [k for k in chosen if k not in daily and k not in before]
    return before, daily, rest


def _instance():
    from dagster import DagsterInstance

    # With DAGSTER_HOME (as `make run` sets it) runs appear in the UI; otherwise they are throwaway.
    return DagsterInstance.get() if os.environ.get("DAGSTER_HOME") else DagsterInstance.ephemeral()


def _root_cause(error) -> str:
    """The innermost message of a step's error (the outer ones only say that the step failed)."""
    while error.cause is not None:
        error = error.cause
    return error.message.strip()


def _run(label: str, selection: list[str], days: list[str] | None, run_config: dict, instance, verbose: bool) -> None:
    """One in-process run of `selection`; `days` (first..last) make it one run over that range."""
    from dagster import Definitions, define_asset_job

    from recsys_assets.console import concise_console, quiet_spark_conf
    from recsys_assets.definitions import all_checks, build_assets
    from recsys_assets.ingest import RANGE_END_TAG, RANGE_START_TAG
    from recsys_assets.resources import build_resources

    typer.secho(f"==> {label}: {', '.join(selection)}", bold=True, err=True)
    s = settings()
    resources = build_resources(s)
    if not verbose:
        # Start the session the runs will reuse, with the expected warnings left out of its log.
        from pyspark.sql import SparkSession

        from recsys_io.spark import prepare_driver_process

        conf = resources["spark"].spark_config
        prepare_driver_process(conf)
        SparkSession.builder.config(map=quiet_spark_conf(conf)).getOrCreate()
    # What dagster.materialize does, with a readable console logger unless --verbose.
    defs = Definitions(
        jobs=[define_asset_job(EPHEMERAL_JOB, selection=selection)],
        assets=[*build_assets(s), *all_checks],
        resources=resources,
        loggers=None if verbose else {"console": concise_console},
    )
    if not verbose:
        run_config = {**run_config, "loggers": {"console": {}}}  # a job logger runs only when configured
    # One day is an ordinary partition run; more are one run over the range, as a UI backfill launches it.
    partition = days[0] if days and len(days) == 1 else None
    tags = {RANGE_START_TAG: days[0], RANGE_END_TAG: days[-1]} if days and not partition else None
    result = defs.resolve_job_def(EPHEMERAL_JOB).execute_in_process(
        run_config=run_config, instance=instance, partition_key=partition, tags=tags, raise_on_error=False
    )
    if not result.success:
        failures = [
            f"{e.step_key}: {_root_cause(e.event_specific_data.error)}"
            for e in result.get_step_failure_events()
            if e.event_specific_data.error
        ]
        fail(f"{label} failed: " + ("; ".join(failures) or "a blocking check failed or a step was skipped"))


@friendly_errors
def materialize_command(
    selection: list[str] = typer.Argument(
        None, help="Assets (e.g. raw_events als_model) or groups (group:model). Default: the whole graph."
    ),
    partition: str = typer.Option(None, "--partition", help="Materialise raw_events for this day (YYYY-MM-DD)."),
    start: str = typer.Option(None, "--from", help="First day of a backfill range (YYYY-MM-DD)."),
    end: str = typer.Option(None, "--to", help="Last day of a backfill range (YYYY-MM-DD)."),
    config: Path = typer.Option(None, "--config", help="Dagster run config as JSON (e.g. ALS parameters)."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Print every Dagster event and Spark warning."),
) -> None:
    """Run assets in-process with the code location's definitions, printing one line per step.

    Daily-partitioned assets (raw_events, impressions, clicks, attributed_orders, online_metrics) run for today
    by default, or --partition, or all days from --from to --to in one run (the lake read once for the range),
    after the unpartitioned assets they read (erasures, products).

    The other selected assets then run once, as of the end of the last day given (bestsellers rank that day's
    window, interactions count and decay up to it).
    """
    from dagster import AssetsDefinition

    from recsys_assets.as_of import BESTSELLERS_OP, INTERACTIONS_OP, day_end
    from recsys_assets.definitions import build_assets

    # events_landing is written by `recsys sink`, not materialised here.
    all_assets = [a for a in build_assets(settings()) if isinstance(a, AssetsDefinition)]
    keys = [key.to_user_string() for a in all_assets for key in a.keys]
    groups: dict[str, list[str]] = {}
    for a in all_assets:
        for key in a.keys:
            groups.setdefault(a.specs_by_key[key].group_name, []).append(key.to_user_string())
    chosen = _selected(selection or [], keys, groups)
    days = _days(partition, start, end)
    run_config = json.loads(config.read_text()) if config else {}
    given_days = partition or start or end
    if given_days:
        dated = {BESTSELLERS_OP: ("bestsellers", "category_bestsellers"), INTERACTIONS_OP: ("interactions",)}
        as_of = day_end(days[-1]).isoformat()
        for op in (op for op, op_keys in dated.items() if any(k in chosen for k in op_keys)):
            run_config.setdefault("ops", {}).setdefault(op, {}).setdefault("config", {}).setdefault("as_of", as_of)
    instance = _instance()
    partitioned = [tuple(k.to_user_string() for k in a.keys) for a in all_assets if a.partitions_def is not None]
    deps = {k.to_user_string(): [d.to_user_string() for d in a.asset_deps[k]] for a in all_assets for k in a.keys}
    before, daily, rest = _phases(chosen, partitioned, deps)
    if before:
        _run("what the daily assets read", before, None, {}, instance, verbose)
    if daily:
        span = days[0] if len(days) == 1 else f"{days[0]}..{days[-1]} ({len(days)} days)"
        _run(f"events of {span}", daily, days, {}, instance, verbose)
    if rest:
        _run("tables, model and serving documents", rest, None, run_config, instance, verbose)


@friendly_errors
def evaluate_command(
    interactions: Path = typer.Option(..., "--interactions", help="User-item file to evaluate on."),
    fmt: str = typer.Option(
        "csv",
        "--format",
        help="csv (header user_id,item_id[,weight|rating][,timestamp]) or "
        "movielens (tab-separated user item rating timestamp).",
    ),
    k: int = typer.Option(10, "--k", min=1, help="Cut-off of the ranking metrics."),
    split: str = typer.Option(
        None,
        "--split",
        help="random (default): per-user 75/25 with a fixed seed; time: newest 25% of each user held out.",
    ),
    repeats: bool = typer.Option(
        False,
        "--repeats",
        help="Count repeat purchases: the file is purchases (csv header user_id,item_id,timestamp[,order_id]); "
        "each shopper's last order is held out, earlier purchases stay in lists and truth; popularity, ALS, "
        "buy_again and their blend (weight chosen on a validation split).",
    ),
    params: str = typer.Option("", "--params", help="ALS parameters, e.g. rank=32,reg_param=0.3,alpha=1,max_iter=15."),
    out: Path = typer.Option(None, "--out", help="Also write the report as JSON here."),
    categories: Path = typer.Option(
        None, "--categories", help="CSV with header item_id,category_id: also report each list's diversity by category."
    ),
) -> None:
    """Train the platform's ALS and the popularity baseline on a file and print precision, recall,
    NDCG and MAP at k under the evaluation protocol, with catalog coverage, the average popularity
    of the recommended items and (given --categories) intra-list diversity. With --repeats, the
    evaluation that counts repeat purchases (docs/batch.md)."""
    from dataclasses import fields

    from recsys_assets.als_training import AlsParams
    from recsys_assets.evaluation import evaluate_split, frame_of, split_frame
    from recsys_core.datasets import read_interactions
    from recsys_core.metrics import metrics_table

    if repeats and (split or fmt != "csv"):
        fail("--repeats splits by each shopper's last order and reads a csv: leave out --split and --format", code=2)
    split = split or "random"
    if split not in ("random", "time"):
        fail("--split is random or time", code=2)
    if categories and not categories.is_file():
        fail(f"--categories {categories}: no such file", code=2)
    types = {f.name: f.type for f in fields(AlsParams)}
    chosen = {}
    for pair in filter(None, params.split(",")):
        name, _, value = pair.partition("=")
        if name.strip() not in types:
            fail(f"unknown ALS parameter {name!r}; known: {', '.join(types)}", code=2)
        try:
            chosen[name.strip()] = (int if types[name.strip()] == "int" else float)(value)
        except ValueError:
            fail(f"{name}={value!r} is not a number", code=2)
    als_params = AlsParams(**chosen)
    if repeats:
        _evaluate_repeats(interactions, als_params, k, categories, out)
        return
    rows = read_interactions(interactions, fmt)
    typer.echo(
        f"{len(rows)} interactions, {len({r.user_id for r in rows})} users, "
        f"{len({r.item_id for r in rows})} items; training ALS {als_params.as_dict()}",
        err=True,
    )
    spark, category_frame = _evaluation_session(categories)
    result = evaluate_split(split_frame(frame_of(spark, rows), split), als_params, k, category_frame)
    typer.echo(metrics_table({"ALS": result["als"], "popularity": result["popularity"]}, k))
    typer.echo(f"\nALS training: {result['seconds']:.1f} s", err=True)
    if out:
        out.write_text(
            json.dumps(
                {"file": str(interactions), "split": split, "k": k, "params": als_params.as_dict(), **result}, indent=2
            )
        )


def _evaluation_session(categories: Path | None):
    """The Spark session of an evaluation and DataFrame(item_id, category_id) of --categories (or None)."""
    from recsys_io.spark import get_spark

    spark = get_spark(settings(), "recsys-evaluate")
    if not categories:
        return spark, None
    return spark, spark.read.csv(str(categories.resolve()), header=True).select("item_id", "category_id")


def _evaluate_repeats(path: Path, als_params, k: int, categories: Path | None, out: Path | None) -> None:
    from recsys_assets.repeat_evaluation import RepeatProtocol, evaluate_with_repeats, purchases_frame
    from recsys_core.datasets import read_purchases
    from recsys_core.metrics import metrics_table

    rows = read_purchases(path)
    typer.echo(
        f"{len(rows)} purchases, {len({r.user_id for r in rows})} shoppers, {len({r.item_id for r in rows})} items; "
        f"training ALS {als_params.as_dict()} twice (validation, test)",
        err=True,
    )
    spark, category_frame = _evaluation_session(categories)
    result = evaluate_with_repeats(purchases_frame(spark, rows), als_params, RepeatProtocol(k=k), category_frame)
    names = {"popularity": "popularity", "als": "ALS", "buy_again": "buy_again"}
    table = {label: result[name] for name, label in names.items()}
    table[f"blend (weight {result['blend_weight']:g})"] = result["blend"]
    typer.echo(metrics_table(table, k))
    typer.echo(f"\nblend weight chosen on validation by NDCG@{k}: {result['validation']}", err=True)
    if out:
        out.write_text(
            json.dumps(
                {"file": str(path), "split": "last order", "k": k, "params": als_params.as_dict(), **result}, indent=2
            )
        )


@model_app.command("list")
@friendly_errors
def list_models() -> None:
    """Every model version, newest first, with NDCG, check result and which one is current."""
    from recsys_io.registry import list_models as models
    from recsys_io.registry import versions_table

    typer.echo(versions_table(with_serving_db(models)))


@model_app.command()
@friendly_errors
def promote(version: str = typer.Argument(..., help="Version to make current (see `recsys model list`).")) -> None:
    """Make a version current; refused if its evaluation checks did not pass."""
    from recsys_io.registry import promote_model

    with_serving_db(lambda db: promote_model(db, version))
    typer.echo(f"model {version} is current")


@model_app.command()
@friendly_errors
def rollback(
    to: str = typer.Option(
        None, "--to", help="Version to return to (default: the previous one that passed its checks)."
    ),
) -> None:
    """Return to an older model version; the newer one is kept and can be promoted again."""
    from recsys_io.registry import rollback_model

    document = with_serving_db(lambda db: rollback_model(db, to))
    typer.echo(f"model {document['_id']} is current")


def register(app: typer.Typer) -> None:
    """Add this area's commands to `app`."""
    app.command("materialize")(materialize_command)
    app.command("evaluate")(evaluate_command)
    app.add_typer(model_app, name="model")
