"""`recsys stack`: the local Kafka + MongoDB-compatible server + Spark jars."""

from __future__ import annotations

import subprocess

import typer

from recsys_cli.common import fail, friendly_errors, settings
from recsys_stack import manager

app = typer.Typer(
    help=(
        "Run the platform's servers on this machine, bound to 127.0.0.1, data under RECSYS_DATA_DIR.\n\n"
        "Kafka 4 (KRaft) runs from Maven Central jars; the document store is `mongod` when installed, "
        "else FerretDB 1.24, built once with Go, on SQLite or (RECSYS_FERRETDB_BACKEND=postgresql) on a "
        "PostgreSQL server the stack runs too. Spark's Delta and Kafka jars are resolved "
        "once with Maven. Set RECSYS_KAFKA_BOOTSTRAP or RECSYS_MONGO_URI to use external servers "
        "instead; ports: RECSYS_KAFKA_PORT, RECSYS_KAFKA_CONTROLLER_PORT, RECSYS_MONGO_PORT, RECSYS_POSTGRES_PORT.\n\n"
        "With RECSYS_SPARK_WORKERS=N (1 or more) it also runs a Spark standalone master and N workers "
        "from the installed pyspark (RECSYS_SPARK_MASTER_PORT, RECSYS_SPARK_WEBUI_PORT, "
        "RECSYS_SPARK_WORKER_CORES, RECSYS_SPARK_WORKER_MEMORY), and the platform's Spark sessions run on it."
    ),
    no_args_is_help=True,
)


@app.command()
@friendly_errors
def up() -> None:
    """Provision (once) and start every local server; wait until each answers. Idempotent."""
    rows = manager.up(settings())
    typer.echo(manager.format_status(rows))


@app.command()
@friendly_errors
def provision() -> None:
    """Fetch and build what the stack runs (Kafka and Spark jars with Maven, FerretDB with Go), once."""
    s = settings()
    manager.provision_all(s)
    typer.echo(f"provisioned into {s.tools_dir}")


@app.command()
@friendly_errors
def down() -> None:
    """Stop the servers this stack started (by pid); their data stays for the next `up`."""
    manager.down(settings())


@app.command()
@friendly_errors
def status() -> None:
    """Each component, its address and pid, and whether it answers (exit 1 if any is down)."""
    rows = manager.status(settings())
    typer.echo(manager.format_status(rows))
    if not all(row.answers for row in rows):
        raise typer.Exit(1)


@app.command()
@friendly_errors
def logs(
    name: str = typer.Argument(
        ..., help="kafka, mongo, postgres (with RECSYS_FERRETDB_BACKEND=postgresql), spark-master or spark-worker-N"
    ),
    lines: int = typer.Option(50, "--lines", "-n", help="How many lines to show."),
    follow: bool = typer.Option(False, "--follow", "-f", help="Keep printing new lines."),
) -> None:
    """Show the tail of a component's log."""
    server = manager.component(settings(), name)
    log_file = server.process.log_file
    if not log_file.exists():
        fail(f"{name} has no log yet at {log_file}; start it with `recsys stack up`")
    subprocess.run(["tail", "-n", str(lines), *(["-F"] if follow else []), str(log_file)], check=False)
