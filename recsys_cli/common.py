"""What every command shares: settings loading and turning known errors into clean exits."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import TypeVar

import typer

from recsys_core.errors import RecsysError
from recsys_core.settings import Settings

F = TypeVar("F", bound=Callable)


def fail(message: str, code: int = 1) -> None:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


def settings() -> Settings:
    try:
        return Settings.from_env()
    except RecsysError as error:
        fail(str(error), code=2)
        raise  # unreachable


def friendly_errors(func: F) -> F:
    """Known failures (bad setting, server down, provisioning) end in one sentence and exit 1."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except RecsysError as error:
            fail(str(error))
        except KeyboardInterrupt:
            typer.echo("interrupted", err=True)
            sys.exit(130)

    return wrapper  # type: ignore[return-value]


def with_serving_db(action):
    """`action(db)` on the serving database, the client closed after; a store that is down ends in a sentence."""
    from recsys_io.mongo import mongo_client, require_mongo, serving_db

    s = settings()
    require_mongo(s)
    client = mongo_client(s)
    try:
        return action(serving_db(client, s))
    finally:
        client.close()
