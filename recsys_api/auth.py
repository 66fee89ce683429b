"""API keys, both checked on `X-API-Key` when their setting is not empty.

- Write routes need one of RECSYS_API_KEYS.
- Routes that reveal one shopper's data (their history and lists, the compatibility routes) need
  one of RECSYS_API_READ_KEYS, or a write key: whoever may change a history may read it.
Shop-wide lists, the catalog and the operational routes stay open.
"""

from __future__ import annotations

import hmac

from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException
from litestar.handlers import BaseRouteHandler
from litestar.openapi.spec import SecurityScheme

API_KEY_HEADER = "X-API-Key"
SECURITY = [{"ApiKey": []}]
READ_SECURITY = [{"ReadKey": []}]
SECURITY_SCHEMES = {
    "ApiKey": SecurityScheme(
        type="apiKey",
        name=API_KEY_HEADER,
        security_scheme_in="header",
        description="One of RECSYS_API_KEYS (write routes, when it is set)",
    ),
    "ReadKey": SecurityScheme(
        type="apiKey",
        name=API_KEY_HEADER,
        security_scheme_in="header",
        description="One of RECSYS_API_READ_KEYS or RECSYS_API_KEYS (routes that reveal "
        "one shopper's data, when RECSYS_API_READ_KEYS is set)",
    ),
}


def _require_one_of(connection: ASGIConnection, keys: tuple[str, ...]) -> None:
    given = connection.headers.get(API_KEY_HEADER, "")
    # Compare against every key in constant time so timing does not reveal a prefix.
    if not any(hmac.compare_digest(given.encode(), key.encode()) for key in keys):
        raise NotAuthorizedException(f"this route needs a valid {API_KEY_HEADER} header")


# Guards are coroutines though they do no I/O: Litestar runs a plain function guard in a worker
# thread, a thread hop on every guarded read.
async def require_api_key(connection: ASGIConnection, _: BaseRouteHandler) -> None:
    keys: tuple[str, ...] = connection.app.state.settings.api_keys
    if keys:
        _require_one_of(connection, keys)


async def require_read_key(connection: ASGIConnection, _: BaseRouteHandler) -> None:
    settings = connection.app.state.settings
    if settings.api_read_keys:
        _require_one_of(connection, settings.api_read_keys + settings.api_keys)
