"""`recsys`: operate the recommendation platform."""

from __future__ import annotations

import typer

from recsys_cli import api, batch, erase, experiment, run, simulate, sink, stack, stream

app = typer.Typer(
    help="recsys: a real-time recommendation platform (Kafka, Dagster, Spark + Delta, MongoDB, Litestar).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(stack.app, name="stack")
for area in (run, api, stream, sink, batch, erase, experiment, simulate):
    area.register(app)

if __name__ == "__main__":
    app()
