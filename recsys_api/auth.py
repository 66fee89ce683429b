"""API keys, both checked on `X-API-Key` when their setting is not empty, by the `security` a route declares.

- Write routes need one of RECSYS_API_KEYS.
- Routes that reveal one shopper's data (their history and lists, the compatibility routes) need
  one of RECSYS_API_READ_KEYS, or a write key: whoever may change a history may read it.
Shop-wide lists, the catalog and the operational routes stay open.
"""

from __future__ import annotations

import hmac

from litestar.exceptions import NotAuthorizedException
from litestar.openapi.spec import SecurityScheme
from litestar.types import ASGIApp, Receive, Scope, Send

API_KEY_HEADER = "X-API-Key"
HEADER_NAME = API_KEY_HEADER.lower().encode()  # as ASGI hands headers over
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


def _keys_needed(security: object, settings) -> tuple[str, ...]:
    """The keys a route's declared `security` accepts; empty: the route is open."""
    if security == SECURITY:
        return settings.api_keys
    if security == READ_SECURITY and settings.api_read_keys:
        return settings.api_read_keys + settings.api_keys
    return ()


def check_api_keys(app: ASGIApp) -> ASGIApp:
    """Middleware (after routing): the key the route's `security` names, on `X-API-Key`.

    What the schema documents is what is enforced, in one place. A middleware rather than
    Litestar guards: a guarded route copies its handler object on every request, a few per cent
    of a read's CPU.
    """

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        keys = _keys_needed(scope["route_handler"].security, scope["litestar_app"].state.settings)
        if keys:
            given = next((v for k, v in scope["headers"] if k == HEADER_NAME), b"")
            # Compare against every key in constant time so timing does not reveal a prefix.
            if not any(hmac.compare_digest(given, key.encode()) for key in keys):
                raise NotAuthorizedException(f"this route needs a valid {API_KEY_HEADER} header")
        await app(scope, receive, send)

    return middleware
