"""Repeat purchases: which products shoppers buy again, a shopper's own buy-again list, and its blend
with the model's list.

    order        the purchases of one shopper with one order id (a basket); where a source has no
                 order ids, the purchases of one shopper at one timestamp
    repeat rate  of a product: the share of its buyers who bought it in two orders or more
    buy_again    a shopper's own purchased products whose repeat rate is at least `min_rate`, each
                 scored by its orders, the older ones counting less (half the weight every
                 `half_life_days`), best first
    blend        the buy-again list interleaved with the model's: at position n (from 1) the
                 buy-again list supplies the product when it has supplied fewer than weight × n
                 so far (0: the model alone, 0.5: alternating from buy-again, 1: every buy-again
                 product first), a product only once, and either list fills in when the other
                 runs out
    served weight  the weight the served recommendations blend at: RECSYS_BUY_AGAIN_WEIGHT when it is
                 set, else the one the evaluation chose on the shop's orders, else 0
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from recsys_core.errors import RecsysError
from recsys_core.metrics import DEFAULT_K

DEFAULT_MIN_REPEAT_RATE = 0.2
DEFAULT_HALF_LIFE_DAYS = 30.0
BLEND_WEIGHTS = (0.0, 0.25, 0.5, 0.75, 1.0)
BUY_AGAIN = "buy_again"
MODEL = "model"
DAY_SECONDS = 86_400.0


class BadBlendWeight(RecsysError):
    pass


@dataclass(frozen=True)
class Purchase:
    user_id: str
    item_id: str
    order_id: str = ""
    ts: float = 0.0

    @property
    def order(self) -> str:
        """The order the purchase belongs to (see the module's docstring)."""
        return self.order_id or f"@{self.ts!r}"


def repeat_rate(purchases: Iterable[Purchase]) -> float:
    """One product's repeat rate from its purchases (0 for none)."""
    orders: dict[str, set[str]] = defaultdict(set)
    for p in purchases:
        orders[p.user_id].add(p.order)
    return sum(1 for o in orders.values() if len(o) >= 2) / len(orders) if orders else 0.0


def repeat_rates(purchases: Iterable[Purchase]) -> dict[str, float]:
    """Every purchased product's repeat rate."""
    by_item: dict[str, list[Purchase]] = defaultdict(list)
    for p in purchases:
        by_item[p.item_id].append(p)
    return {item: repeat_rate(rows) for item, rows in by_item.items()}


def split_last_order(purchases: Iterable[Purchase]) -> tuple[list[Purchase], list[Purchase]]:
    """One shopper's purchases before their last order, and that order (the latest; ties by order id).
    A shopper with a single order keeps it for training and holds nothing out."""
    rows = list(purchases)
    started: dict[str, float] = {}
    for p in rows:
        started[p.order] = min(p.ts, started.get(p.order, p.ts))
    if len(started) < 2:
        return rows, []
    last = max(started, key=lambda order: (started[order], order))
    return [p for p in rows if p.order != last], [p for p in rows if p.order == last]


def buy_again_scored(
    history: Iterable[Purchase],
    rates: Mapping[str, float],
    now: float,
    k: int = DEFAULT_K,
    min_rate: float = DEFAULT_MIN_REPEAT_RATE,
    half_life_days: float = DEFAULT_HALF_LIFE_DAYS,
) -> list[tuple[str, float]]:
    """A shopper's k best (product, score) to buy again from their purchase history, best first (ties by id).

    Each order of a product adds 0.5 ** (its age in days / half_life_days); a purchase timed after
    `now` counts as new, several purchases of a product in one order as one."""
    orders: dict[str, dict[str, float]] = defaultdict(dict)
    for p in history:
        if rates.get(p.item_id, 0.0) >= min_rate:
            orders[p.item_id][p.order] = max(p.ts, orders[p.item_id].get(p.order, p.ts))
    half_life = half_life_days * DAY_SECONDS
    scores = {
        item: sum(0.5 ** (max(0.0, now - ts) / half_life) for ts in times.values()) for item, times in orders.items()
    }
    return sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))[:k]


def buy_again(
    history: Iterable[Purchase],
    rates: Mapping[str, float],
    now: float,
    k: int = DEFAULT_K,
    min_rate: float = DEFAULT_MIN_REPEAT_RATE,
    half_life_days: float = DEFAULT_HALF_LIFE_DAYS,
) -> list[str]:
    """A shopper's k best products to buy again (buy_again_scored without the scores)."""
    return [item for item, _ in buy_again_scored(history, rates, now, k, min_rate, half_life_days)]


def check_weight(weight: float) -> float:
    if not 0.0 <= weight <= 1.0:
        raise BadBlendWeight(f"blend weight {weight!r}: expected a number from 0 to 1")
    return weight


def blend(again: Sequence[str], model: Sequence[str], weight: float, k: int = DEFAULT_K) -> list[tuple[str, str]]:
    """The first k (product, source) of the blended list, source BUY_AGAIN or MODEL (see the module's docstring)."""
    check_weight(weight)
    picked: list[tuple[str, str]] = []
    taken: set[str] = set()
    sources = {BUY_AGAIN: iter(again), MODEL: iter(model)}
    from_again = 0
    while len(picked) < k and sources:
        # The share is compared with a tolerance so that weight 0.5 alternates exactly.
        wanted = BUY_AGAIN if from_again < weight * (len(picked) + 1) - 1e-9 else MODEL
        source = wanted if wanted in sources else next(iter(sources))
        item = next(sources[source], None)
        if item is None:
            del sources[source]
            continue
        if item in taken:
            continue
        taken.add(item)
        picked.append((item, source))
        from_again += source == BUY_AGAIN
    return picked


def best_weight(ndcg_by_weight: Mapping[float, float]) -> float:
    """The blend weight with the best NDCG; among equals the smallest (the model's list changes least)."""
    if not ndcg_by_weight:
        raise BadBlendWeight("no blend weight was evaluated")
    return min(ndcg_by_weight, key=lambda w: (-ndcg_by_weight[w], w))


def shop_repeat_rate(rates: Mapping[str, float]) -> float:
    """The shop's repeat rate: the share of its purchased products that some buyer bought in two orders."""
    return sum(1 for rate in rates.values() if rate > 0) / len(rates) if rates else 0.0


def can_buy_again(rates: Mapping[str, float], min_rate: float = DEFAULT_MIN_REPEAT_RATE) -> bool:
    """Whether any buy_again list can hold a product: without one every blend is the model's list, so the
    blend weight is 0 without fitting anything."""
    return any(rate >= min_rate for rate in rates.values())


def served_weight(setting: float | None, recorded: float | None) -> float:
    """The blend weight to serve (see the module's docstring): the shop's setting overrides the evaluation."""
    if setting is not None:
        return setting
    return recorded if recorded is not None else 0.0
