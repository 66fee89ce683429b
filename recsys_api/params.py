"""Parameters several routes share, declared once so the schema documents them the same way."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from litestar.params import Parameter

from recsys_api.errors import ApiError
from recsys_core.events import MAX_ID_LENGTH, MAX_USER_ID_LENGTH

MAX_LIMIT = 100
MAX_EXCLUDE = 100

UserId = Annotated[str, Parameter(min_length=1, max_length=MAX_USER_ID_LENGTH, description="The shopper's id")]
ProductId = Annotated[str, Parameter(min_length=1, max_length=MAX_ID_LENGTH, description="A product id")]
Limit = Annotated[int, Parameter(ge=1, le=MAX_LIMIT, description="How many products at most")]
Category = Annotated[
    str | None,
    Parameter(min_length=1, max_length=MAX_ID_LENGTH, description="Only products of this category"),
]
Exclude = Annotated[
    str | None,
    Parameter(
        max_length=MAX_EXCLUDE * (MAX_ID_LENGTH + 1),
        description=f"Comma-separated product ids (at most {MAX_EXCLUDE}) to leave out, e.g. those already on the page",
    ),
]


def excluded_products(raw: str | None) -> list[str]:
    """The ids of an `exclude=` parameter; ApiError (400, field `exclude`) for too many or one too long."""
    if not raw:
        return []
    ids = [piece.strip() for piece in raw.split(",") if piece.strip()]
    if len(ids) > MAX_EXCLUDE:
        raise ApiError(
            f"exclude at most {MAX_EXCLUDE} products",
            [{"field": "exclude", "reason": f"{len(ids)} product ids; at most {MAX_EXCLUDE}"}],
        )
    if any(len(product_id) > MAX_ID_LENGTH for product_id in ids):
        raise ApiError(
            "an excluded product id is too long",
            [{"field": "exclude", "reason": f"each product id must be at most {MAX_ID_LENGTH} characters"}],
        )
    return ids


@dataclass(frozen=True)
class ListQuery:
    """What a request for a shopper's list asks: how many, and what to leave out (`exclude=`) or keep
    only (`category=`); `min_size` is RECSYS_MIN_LIST_SIZE, applied after them."""

    limit: int
    min_size: int
    exclude: tuple[str, ...] = ()
    category: str | None = None
    # RECSYS_BUY_AGAIN_WEIGHT, None when unset: the recommendations' share of products bought again (recsys_api.blend).
    buy_again_weight: float | None = None
