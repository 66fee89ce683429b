"""Ids in the path are percent-encoded path segments, `/` included: `/v1/products/a%2Fb/similar`.

Ids may hold any character, and a shop's client encodes each one as a segment (JavaScript's
`encodeURIComponent`, `urllib.parse.quote(id, safe="")`). ASGI servers decode the path before the
app sees it, so an encoded `/` came back as a separator and the route was not found. So the app
routes a raw path that holds escapes on its segments: each decoded, with its own `%` and `/`
escaped again (`route_on_segments`, before routing), and decodes the path parameters it found
(`decode_path_params`, after routing). That also keeps an id such as `a%2Fb` (sent `a%252Fb`) whole
where a path is decoded twice, as some test clients do. Paths without escapes pass through.
"""

from __future__ import annotations

from urllib.parse import unquote

from litestar.types import ASGIApp, Receive, Scope, Send

ESCAPED = "recsys.escaped_path"  # in the scope of a request routed on escaped segments


def escape_segment(segment: str) -> str:
    """A decoded segment as routing sees it: no '/' of its own, and '%' kept apart from the escapes."""
    return segment.replace("%", "%25").replace("/", "%2F")


def route_on_segments(scope: Scope) -> None:
    """Before routing: route a raw path with escapes on its segments, each as the client meant it."""
    raw = scope.get("raw_path") or b""
    raw = raw.split(b"?", 1)[0]  # some clients' raw_path holds the query string too
    if b"%" not in raw:
        return
    try:
        text = raw.decode("ascii")
    except UnicodeDecodeError:  # not a path a client encoded; route it as the server decoded it
        return
    scope["path"] = "/".join(escape_segment(unquote(segment)) for segment in text.split("/"))
    scope[ESCAPED] = True  # type: ignore[literal-required]


def decode_path_params(app: ASGIApp) -> ASGIApp:
    """Middleware (after routing): the path parameters of a request routed on escaped segments, decoded."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope.get(ESCAPED):
            scope["path_params"] = {
                name: unquote(value) if isinstance(value, str) else value
                for name, value in scope["path_params"].items()
            }
        await app(scope, receive, send)

    return middleware
