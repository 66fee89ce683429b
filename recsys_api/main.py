"""ASGI entry point for servers that import an app by name (`uvicorn recsys_api.main:app`)."""

from recsys_api.app import create_app
from recsys_core.settings import Settings

app = create_app(Settings.from_env())
