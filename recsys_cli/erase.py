"""`recsys erase USER`: erase a shopper everywhere, as `DELETE /v1/users/{user_id}` does."""

from __future__ import annotations

import json

import typer

from recsys_cli.common import friendly_errors, settings

HELP = """Erase a shopper everywhere the platform keeps them (the right to erasure).

Publishes a user_erasure event to the events topic (and waits for Kafka's acknowledgement), then deletes the shopper's history, recommendations and buy-again list from the serving store, and records the erasure by the SHA-256 of the id (never the id). The streaming job drops their events timed up to the erasure that arrive later; the next batch runs (the `erasures` asset, raw_events, interactions, the model) delete their rows from every lake table, VACUUM them after RECSYS_ERASURE_VACUUM_RETAIN_HOURS and rewrite the model files without them.

Prints what was erased now and what the next runs remove, as JSON. Safe to repeat. Kafka or MongoDB down: exit 1, and nothing is deleted when Kafka did not acknowledge.
"""


def register(app: typer.Typer) -> None:
    """Add `recsys erase` to `app`."""

    @app.command(help=HELP)
    @friendly_errors
    def erase(user: str = typer.Argument(..., help="The shopper's id, as events carry it.")) -> None:
        from recsys_core.events import InvalidEvent
        from recsys_io.erasure import erase_user

        try:
            typer.echo(json.dumps(erase_user(settings(), user)))
        except InvalidEvent as error:
            typer.secho(f"error: {error}", fg=typer.colors.RED, err=True)
            raise typer.Exit(2) from None
