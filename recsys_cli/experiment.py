"""`recsys experiment`: the A/B tests the API serves, from the command line (the same rules and store)."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path

import typer

from recsys_cli.common import fail, friendly_errors, with_serving_db

experiment_app = typer.Typer(
    help="A/B tests between strategies and models: define, list, show with results, stop, promote the winner.",
    no_args_is_help=True,
)


def _describe(document: dict, now: datetime) -> str:
    from recsys_core.experiments import Experiment
    from recsys_core.markdown import markdown_table

    experiment = Experiment.from_document(document)
    lines = [
        f"{experiment.name}: {experiment.surface}, {experiment.status(now)} "
        f"(from {experiment.starts_at:%Y-%m-%d %H:%M} UTC"
        + (f" to {experiment.ends_at:%Y-%m-%d %H:%M} UTC)" if experiment.ends_at else ")"),
        markdown_table(
            ["variant", "share", "serves"],
            [[v.name, f"{v.share:g}", v.strategy or f"model {v.model_version}"] for v in experiment.variants],
        ),
    ]
    results = document.get("results") or []
    if results:
        lines.append(
            markdown_table(
                ["variant", "shoppers", "lists", "clicks", "CTR", "orders", "conversion", "CTR vs first", "p"],
                [
                    [
                        r["variant"],
                        r["shoppers"],
                        r["lists"],
                        r["clicks"],
                        f"{r['ctr']:.4f}",
                        r["orders"],
                        f"{r['conversion']:.4f}",
                        "" if r["ctr_difference"] is None else f"{r['ctr_difference']:+.4f}",
                        "" if r["p_value"] is None else f"{r['p_value']:.3f}",
                    ]
                    for r in results
                ],
            )
        )
    lines.append(f"decision: {document.get('decision') or 'no data yet'}")
    return "\n".join(lines)


@experiment_app.command("put")
@friendly_errors
def put(
    name: str = typer.Argument(..., help="The experiment's name (its id in URLs and results)."),
    file: Path = typer.Option(
        ...,
        "--file",
        help='JSON definition, "-" for stdin: {"surface": "recommendations", "variants": [{"name": "a", '
        '"share": 0.5, "strategy": "bestsellers"}, {"name": "b", "share": 0.5, "strategy": "model"}]}.',
    ),
) -> None:
    """Define (or redefine) an experiment, as PUT /v1/experiments/NAME does."""
    from recsys_core.experiments import ExperimentError, parse_experiment
    from recsys_io.mongo import EXPERIMENTS

    try:
        body = json.loads(sys.stdin.read() if str(file) == "-" else file.read_text())
    except (OSError, json.JSONDecodeError) as error:
        fail(f"cannot read the definition {file}: {error}", code=2)
    now = datetime.now(UTC)
    try:
        experiment = parse_experiment(name, body, now)
    except ExperimentError as error:
        fail(f"the definition is invalid: {error}", code=2)

    def save(db):
        db[EXPERIMENTS].update_one(
            {"_id": name}, {"$set": {**experiment.as_document(), "updated_at": now}}, upsert=True
        )
        return db[EXPERIMENTS].find_one({"_id": name})

    typer.echo(_describe(with_serving_db(save), now))


@experiment_app.command("list")
@friendly_errors
def list_all() -> None:
    """Every experiment with its surface, status and decision."""
    from recsys_core.experiments import Experiment
    from recsys_core.markdown import markdown_table
    from recsys_io.mongo import EXPERIMENTS

    now = datetime.now(UTC)
    documents = with_serving_db(lambda db: list(db[EXPERIMENTS].find({}).sort("_id", 1)))
    rows = []
    for document in documents:
        experiment = Experiment.from_document(document)
        variants = ", ".join(v.name for v in experiment.variants)
        rows.append(
            [experiment.name, experiment.surface, experiment.status(now), variants, document.get("decision") or ""]
        )
    typer.echo(markdown_table(["experiment", "surface", "status", "variants", "decision"], rows))


@experiment_app.command("show")
@friendly_errors
def show(name: str = typer.Argument(..., help="The experiment's name.")) -> None:
    """The definition, status, each variant's results against the first and the decision."""
    from recsys_io.mongo import EXPERIMENTS

    document = with_serving_db(lambda db: db[EXPERIMENTS].find_one({"_id": name}))
    if document is None:
        fail(f"no experiment {name!r} (see `recsys experiment list`)")
    typer.echo(_describe(document, datetime.now(UTC)))


@experiment_app.command("stop")
@friendly_errors
def stop(name: str = typer.Argument(..., help="The experiment's name.")) -> None:
    """End it now: lists go back to the default strategy; definition and results are kept."""
    from recsys_core.experiments import Experiment
    from recsys_io.mongo import EXPERIMENTS

    now = datetime.now(UTC)

    def end(db):
        document = db[EXPERIMENTS].find_one({"_id": name})
        if document is None:
            return None
        ended = Experiment.from_document(document).stopped(now).as_document()
        db[EXPERIMENTS].update_one({"_id": name}, {"$set": ended})
        return {**document, **ended}

    document = with_serving_db(end)
    if document is None:
        fail(f"no experiment {name!r} (see `recsys experiment list`)")
    typer.echo(_describe(document, now))


@experiment_app.command("promote")
@friendly_errors
def promote(name: str = typer.Argument(..., help="The experiment's name.")) -> None:
    """Make the winning variant's model version current (refused without a winner, or when it serves a strategy)."""
    from recsys_io.registry import promote_experiment_winner

    document = with_serving_db(lambda db: promote_experiment_winner(db, name))
    typer.echo(f"model {document['_id']} is current, the winner of {name}")


def register(app: typer.Typer) -> None:
    """Add this area's commands to `app`."""
    app.add_typer(experiment_app, name="experiment")
