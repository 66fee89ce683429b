"""What every served list carries besides its products: a rec_id recorded as an impression, and items with reasons."""

from __future__ import annotations

from recsys_api.impressions import Impressions
from recsys_api.schemas import ListItem, Reason
from recsys_api.serving import ProductList

# Where a list is shown, as impressions name it (the surfaces of online metrics and experiments).
HISTORY = "history"
BESTSELLERS = "bestsellers"
RECOMMENDATIONS = "recommendations"
SHOP_BESTSELLERS = "shop_bestsellers"
SIMILAR = "similar"


def items(served: ProductList) -> list[ListItem]:
    return [
        ListItem(
            product_id,
            Reason(
                kind=reason["kind"],
                product_id=reason.get("product_id"),
                category_id=reason.get("category_id"),
                viewed_at=reason.get("viewed_at"),
            ),
        )
        for product_id, reason in zip(served.products, served.reasons, strict=True)
    ]


def shown(
    impressions: Impressions, surface: str, user_id: str | None, served: ProductList
) -> tuple[str, list[ListItem]]:
    """(rec_id, items) of a list about to be answered, its impression recorded."""
    return impressions.record(surface, user_id, served), items(served)
