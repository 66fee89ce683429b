"""How simulated shoppers behave: sessions of views, carts, purchases and ratings, past or live.

A session is a run of product views, mostly in the shopper's preferred categories and often
staying in one category; some views put the product in the cart, a cart is sometimes bought, a
bought product is sometimes rated. Shoppers come back: a new session often revisits what they
looked at last time. Every event is already in the canonical form of `recsys_core.events`.
"""

from __future__ import annotations

import bisect
import heapq
import itertools
import math
import random
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from recsys_core.events import format_ts
from recsys_simulator.reactions import ServedList, clicked_products
from recsys_simulator.store import Shopper, Store, pick

PREFERRED_CATEGORY_CHANCE = 0.85
STAY_IN_CATEGORY_CHANCE = 0.6
REVISIT_CHANCE = 0.15
CART_CHANCE_PREFERRED = 0.10
CART_CHANCE_OTHER = 0.02
CHECKOUT_CHANCE = 0.55
RATING_CHANCE = 0.3
MEAN_VIEWS = 5.0
MAX_VIEWS = 25
RECENT_VIEWS_KEPT = 10
SOURCES = ("search", "category", "home", "recommendation", "email", None)
SOURCE_CUM_WEIGHTS = list(itertools.accumulate((30, 25, 20, 15, 5, 5)))
# Shoppers visit more in the evening (UTC hours 0..23).
HOUR_CUM_WEIGHTS = list(itertools.accumulate((1, 1, 1, 1, 1, 1, 2, 3, 4, 5, 5, 5, 6, 6, 5, 5, 5, 6, 8, 9, 9, 7, 4, 2)))
# The first preferred category is liked most.
PREFERENCE_CUM_WEIGHTS = (3, 5, 6)
LIVE_CONCURRENT_SESSIONS = 8
# Share of live visits that open on the shopper's recommendations (when the feed is given them).
OPENS_ON_A_LIST_CHANCE = 0.5


def uuid4_text(bits: int) -> str:
    """`str(uuid.UUID(int=bits, version=4))` without building a UUID object (hot path)."""
    bits = (bits & ~(0xF000 << 64) | (0x4000 << 64)) & ~(0xC000 << 48) | (0x8000 << 48)
    h = f"{bits:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def utc_ts(ts: datetime) -> str:
    """`recsys_core.events.format_ts` for UTC datetimes at millisecond precision, several times faster."""
    return ts.isoformat(timespec="milliseconds")[:-6] + "Z"


class SessionModel:
    """Generates sessions from one random stream; remembers each shopper's recent views."""

    def __init__(self, store: Store, rng: random.Random):
        self.store = store
        self.rng = rng
        self.recent: dict[str, deque[str]] = {}
        self._shopper_cum_activity: list[float] | None = None

    def _event(self, event_type: str, user_id: str, ts: datetime, **fields: Any) -> dict[str, Any]:
        event_id = uuid4_text(self.rng.getrandbits(128))
        return {"event_id": event_id, "type": event_type, "user_id": user_id, "ts": utc_ts(ts), **fields}

    def _next_product(self, shopper: Shopper, previous_category: str | None) -> str:
        rng, store = self.rng, self.store
        recent = self.recent.get(shopper.user_id)
        if recent and rng.random() < REVISIT_CHANCE:
            return rng.choice(recent)
        if previous_category is not None and rng.random() < STAY_IN_CATEGORY_CHANCE:
            category = previous_category
        elif rng.random() < PREFERRED_CATEGORY_CHANCE:
            category = pick(
                shopper.preferred_categories, PREFERENCE_CUM_WEIGHTS[: len(shopper.preferred_categories)], rng
            )
        else:
            category = store.pick_category(rng)
        return store.pick_product(category, rng).product_id

    def _view_count(self) -> int:
        # Geometric: most sessions are short, a few are long browsing sprees.
        return min(MAX_VIEWS, 1 + int(math.log(1.0 - self.rng.random()) / math.log(1 - 1 / MEAN_VIEWS)))

    def session(
        self, shopper: Shopper, start: datetime, served: ServedList | None = None
    ) -> list[tuple[datetime, dict[str, Any]]]:
        """One visit: (ts, event) pairs in time order. A visit that opens on a list the platform
        `served` starts with the clicks on it, each followed by the view of the clicked product."""
        rng, store = self.rng, self.store
        user_id, ts = shopper.user_id, start
        events: list[tuple[datetime, dict[str, Any]]] = []
        cart: dict[str, int] = {}
        category: str | None = None
        recent = self.recent.setdefault(shopper.user_id, deque(maxlen=RECENT_VIEWS_KEPT))
        clicks = clicked_products(shopper, served, store, rng) if served else []
        for index in range(len(clicks) + self._view_count()):
            if served and index < len(clicks):
                product = store.product_by_id[clicks[index]]
                source: str | None = "recommendation"
                events.append(
                    (ts, self._event("click", user_id, ts, product_id=product.product_id, rec_id=served.rec_id))
                )
                ts += timedelta(milliseconds=rng.randint(500, 3_000))
            else:
                product = store.product_by_id[self._next_product(shopper, category)]
                source = pick(SOURCES, SOURCE_CUM_WEIGHTS, rng)
            category = product.category_id
            events.append((ts, self._event("product_view", user_id, ts, product_id=product.product_id, source=source)))
            recent.append(product.product_id)
            liked = category in shopper.preferred_categories
            if rng.random() < (CART_CHANCE_PREFERRED if liked else CART_CHANCE_OTHER):
                ts += timedelta(milliseconds=rng.randint(3_000, 40_000))
                quantity = 1 if rng.random() < 0.85 else rng.randint(2, 3)
                cart[product.product_id] = cart.get(product.product_id, 0) + quantity
                events.append(
                    (ts, self._event("add_to_cart", user_id, ts, product_id=product.product_id, quantity=quantity))
                )
            ts += timedelta(milliseconds=rng.randint(5_000, 120_000))
        if cart and rng.random() < CHECKOUT_CHANCE:
            ts += timedelta(milliseconds=rng.randint(20_000, 180_000))
            order_id = f"o-{rng.getrandbits(64):016x}"
            items = [
                {"product_id": pid, "quantity": q, "price": store.product_by_id[pid].price} for pid, q in cart.items()
            ]
            events.append((ts, self._event("purchase", user_id, ts, order_id=order_id, items=items)))
            for item in items:
                if rng.random() < RATING_CHANCE:
                    ts += timedelta(milliseconds=rng.randint(30_000, 600_000))
                    liked = store.product_by_id[item["product_id"]].category_id in shopper.preferred_categories
                    score = rng.choice((4.0, 4.5, 5.0, 5.0, 3.5) if liked else (2.0, 3.0, 3.5, 4.0, 4.5))
                    events.append((ts, self._event("rating", user_id, ts, product_id=item["product_id"], score=score)))
        return events

    def sessions_today(self, shopper: Shopper) -> int:
        """Poisson draw (Knuth) of how many visits the shopper makes in one day."""
        limit, count, product = math.exp(-shopper.sessions_per_day), 0, self.rng.random()
        while product > limit:
            count += 1
            product *= self.rng.random()
        return count

    def start_of_visit(self, day: datetime) -> datetime:
        hour = pick(range(24), HOUR_CUM_WEIGHTS, self.rng)
        return day + timedelta(hours=hour, milliseconds=self.rng.randrange(3_600_000))

    def pick_shopper(self) -> Shopper:
        """Active shoppers turn up more often."""
        if self._shopper_cum_activity is None:
            self._shopper_cum_activity = list(itertools.accumulate(s.sessions_per_day for s in self.store.shoppers))
        return pick(self.store.shoppers, self._shopper_cum_activity, self.rng)


def shopper_history(store: Store, index: int, days: int, end: datetime) -> Iterator[dict[str, Any]]:
    """One shopper's `days` of visits up to `end`, in time order, from the shopper's own random stream.

    Day by day, a Poisson number of visits; events that spill past midnight wait until the next
    day's are merged in. Nothing after `end` is produced. Own streams make shoppers independent:
    any subset of them can be generated alone (e.g. in parallel) and gives the same events.
    """
    shopper = store.shoppers[index]
    model = SessionModel(store, random.Random(f"{store.config.seed}:history:{index}"))
    start = end - timedelta(days=days)
    pending: list[tuple[datetime, dict[str, Any]]] = []
    for day_number in range(days):
        day = start + timedelta(days=day_number)
        visits = model.sessions_today(shopper)
        for _ in range(visits):
            pending.extend(entry for entry in model.session(shopper, model.start_of_visit(day)) if entry[0] <= end)
        if not pending:
            continue
        if visits > 1:
            pending.sort(key=_entry_ts)
        cut = bisect.bisect_left(pending, day + timedelta(days=1), key=_entry_ts)
        yield from (event for _, event in pending[:cut])
        del pending[:cut]
    yield from (event for _, event in pending)


def _entry_ts(entry: tuple[datetime, dict[str, Any]]) -> datetime:
    return entry[0]


def _event_ts(event: dict[str, Any]) -> str:
    return event["ts"]  # canonical timestamps sort as text


def history_events(
    store: Store, days: int, end: datetime, shoppers: Iterable[int] | None = None
) -> Iterator[dict[str, Any]]:
    """`days` of past events ending at `end`, in time order; the same store and end give the same stream.

    `shoppers` (indexes into store.shoppers, default all) limits the stream to some shoppers;
    their events are exactly those they have in the full stream.
    """
    if days < 1:
        raise ValueError("days must be at least 1")
    if end.tzinfo is None:
        raise ValueError("end must be an aware datetime (UTC)")
    end = end.astimezone(UTC)
    indexes = range(len(store.shoppers)) if shoppers is None else shoppers
    return heapq.merge(*(shopper_history(store, i, days, end) for i in indexes), key=_event_ts)


def live_events(
    store: Store,
    clock: Callable[[], datetime],
    seed_suffix: str = "live",
    concurrency: int = LIVE_CONCURRENT_SESSIONS,
    served_to: Callable[[str], ServedList | None] | None = None,
) -> Iterator[dict[str, Any]]:
    """Endless live traffic: several sessions interleaved, each event stamped `clock()` when taken.

    `seed_suffix` picks the random stream of the sessions (with the store's seed): the same suffix
    gives the same sessions and event ids. With `served_to` (a shopper's list as the platform serves
    it now, or None), a share of the visits opens on that list and reacts to it.
    """
    model = SessionModel(store, random.Random(f"{store.config.seed}:{seed_suffix}"))
    active: list[Iterator[dict[str, Any]]] = []
    while True:
        while len(active) < concurrency:
            shopper = model.pick_shopper()
            served = served_to(shopper.user_id) if served_to and model.rng.random() < OPENS_ON_A_LIST_CHANCE else None
            active.append(iter([event for _, event in model.session(shopper, clock(), served)]))
        index = model.rng.randrange(len(active))
        event = next(active[index], None)
        if event is None:
            active.pop(index)
            continue
        yield {**event, "ts": format_ts(clock())}
