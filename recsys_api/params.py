"""Parameters several routes share, declared once so the schema documents them the same way."""

from __future__ import annotations

from typing import Annotated

from litestar.params import Parameter

from recsys_core.events import MAX_ID_LENGTH, MAX_USER_ID_LENGTH

MAX_LIMIT = 100

UserId = Annotated[str, Parameter(min_length=1, max_length=MAX_USER_ID_LENGTH, description="The shopper's id")]
ProductId = Annotated[str, Parameter(min_length=1, max_length=MAX_ID_LENGTH, description="A product id")]
Limit = Annotated[int, Parameter(ge=1, le=MAX_LIMIT, description="How many products at most")]
