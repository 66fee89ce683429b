"""API keys: write routes need `X-API-Key` to be one of RECSYS_API_KEYS when that setting is not empty."""

from __future__ import annotations

import hmac

from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException
from litestar.handlers import BaseRouteHandler

API_KEY_HEADER = "X-API-Key"
SECURITY = [{"ApiKey": []}]


def require_api_key(connection: ASGIConnection, _: BaseRouteHandler) -> None:
    keys: tuple[str, ...] = connection.app.state.settings.api_keys
    if not keys:
        return
    given = connection.headers.get(API_KEY_HEADER, "")
    # Compare against every key in constant time so timing does not reveal a prefix.
    if not any(hmac.compare_digest(given.encode(), key.encode()) for key in keys):
        raise NotAuthorizedException(f"this route needs a valid {API_KEY_HEADER} header")
