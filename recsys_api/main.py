"""ASGI entry point for servers that build the app by name (`uvicorn --factory recsys_api.main:app_from_env`).

A factory rather than a module-level app, so importing this module reads no setting: each worker
reads and validates the RECSYS_* variables when it builds its app.
"""

from litestar import Litestar

from recsys_api.app import create_app
from recsys_core.settings import Settings


def app_from_env() -> Litestar:
    return create_app(Settings.from_env())
