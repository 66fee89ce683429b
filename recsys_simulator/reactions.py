"""How a simulated shopper reacts to a list the platform served them: which products they click.

The hidden tastes that make the simulated history decide here too: a shopper reads down the list,
less likely to look at each next position, and clicks a product of a preferred category far more
often than any other (the first preferred category most). A list that has learned a shopper's
tastes (the model's) therefore earns more clicks than one that has not (the shop's bestsellers),
and the online metrics and an A/B test between them show it.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from recsys_simulator.store import Shopper, Store

# Chance of reading on to the next position of a list: position 10 is read 1 time in 4.
READ_ON_CHANCE = 0.86
# Chance of clicking a product that is read, by how much the shopper likes its category.
CLICK_CHANCE_BY_PREFERENCE = (0.30, 0.20, 0.12)
CLICK_CHANCE_OTHER = 0.02
MAX_CLICKS = 2


@dataclass(frozen=True)
class ServedList:
    """A list the API served a shopper: what the click names (rec_id) and what the shopper saw."""

    rec_id: str
    products: tuple[str, ...]
    # Which arm served it (the experiment's variant, else the strategy): what the simulator tallies.
    arm: str


def click_chance(shopper: Shopper, category_id: str) -> float:
    if category_id in shopper.preferred_categories:
        return CLICK_CHANCE_BY_PREFERENCE[shopper.preferred_categories.index(category_id)]
    return CLICK_CHANCE_OTHER


def clicked_products(shopper: Shopper, served: ServedList, store: Store, rng: random.Random) -> list[str]:
    """The products of `served` the shopper clicks, top first; products the store does not sell are
    read past (the platform may serve ids this simulated store never made)."""
    clicks: list[str] = []
    for product_id in served.products:
        product = store.product_by_id.get(product_id)
        if product is not None and rng.random() < click_chance(shopper, product.category_id):
            clicks.append(product_id)
            if len(clicks) == MAX_CLICKS:
                break
        if rng.random() >= READ_ON_CHANCE:
            break
    return clicks
