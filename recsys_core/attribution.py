"""Which served list an order is owed to: the attribution rule.

A purchased product is attributed to the list it was last clicked in (`rec_id`), when the click
came at most the attribution window (RECSYS_ATTRIBUTION_WINDOW_HOURS, default 24) before the
purchase. The last click wins: a shopper who clicked a product in the recommendations and then
again in the bestsellers bought it from the bestsellers. A click after the purchase, or on
another product, or by another shopper, attributes nothing; two purchases after one click are
both attributed to it.

Pure: canonical events in (recsys_core.events, `ts` as text or aware datetime), attributed order
lines out. It needs only one shopper's events at a time, so a Spark job applies it to the events
of each shopper grouped on an executor, as `recsys_core.interactions` is applied.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from recsys_core.events import as_datetime

DEFAULT_WINDOW = timedelta(hours=24)


@dataclass(frozen=True)
class AttributedLine:
    """One order line and the list it is owed to."""

    user_id: str
    order_id: str
    product_id: str
    quantity: int
    price: float | None
    purchased_at: datetime
    rec_id: str
    clicked_at: datetime


def attributed_purchases(
    events: Iterable[Mapping[str, Any]], window: timedelta = DEFAULT_WINDOW
) -> list[AttributedLine]:
    """The order lines of `events` attributed to a clicked list, in the order of the purchases' times.

    Events of one time are taken in the order given (a click given after a purchase of the same
    millisecond came after it): give them in arrival order.
    """
    ordered = sorted(enumerate(events), key=lambda pair: (as_datetime(pair[1]["ts"]), pair[0]))
    last_click: dict[tuple[str, str], tuple[datetime, str]] = {}
    lines: list[AttributedLine] = []
    for _, event in ordered:
        kind = event["type"]
        if kind == "click":
            last_click[(event["user_id"], event["product_id"])] = (as_datetime(event["ts"]), event["rec_id"])
        elif kind == "purchase":
            purchased_at = as_datetime(event["ts"])
            for item in event.get("items") or ():
                click = last_click.get((event["user_id"], item["product_id"]))
                if click is None or purchased_at - click[0] > window:
                    continue
                lines.append(
                    AttributedLine(
                        user_id=event["user_id"],
                        order_id=event["order_id"],
                        product_id=item["product_id"],
                        quantity=int(item.get("quantity") or 1),
                        price=item.get("price"),
                        purchased_at=purchased_at,
                        rec_id=click[1],
                        clicked_at=click[0],
                    )
                )
    return lines
