"""The API's request class: Litestar's, with a body nested too deeply to decode answered as bad input."""

from __future__ import annotations

from typing import Any

from litestar import Request

from recsys_api.errors import ApiError
from recsys_core.catalog import MAX_ATTRIBUTE_DEPTH

TOO_DEEP = "the JSON body nests arrays or objects too deeply to be read"
REASON = (
    f"nested too deeply to decode; a valid body nests a few levels (catalog attributes at most {MAX_ATTRIBUTE_DEPTH})"
)


class ApiRequest(Request):
    async def json(self) -> Any:
        """The decoded JSON body of any route that takes one.

        msgspec follows nesting on the interpreter's stack and gives up with a RecursionError
        somewhere below a thousand levels (how far depends on the stack in use). Such a body is
        malformed input like any other: a 400 in the one error shape, not a 500.
        """
        try:
            return await super().json()
        except RecursionError:
            raise ApiError(TOO_DEEP, [{"field": "", "reason": REASON}]) from None
