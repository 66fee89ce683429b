"""Simulated shoppers react to served lists by their hidden tastes: liked products earn the clicks."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta

from recsys_core.events import parse_event
from recsys_simulator import StoreConfig, build_store
from recsys_simulator.reactions import MAX_CLICKS, ServedList, clicked_products
from recsys_simulator.sessions import SessionModel

STORE = build_store(StoreConfig(seed=3, products=200, categories=8, users=50))
NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)


def products_in(categories: set[str], count: int) -> tuple[str, ...]:
    return tuple(p.product_id for p in STORE.products if p.category_id in categories)[:count]


def test_a_list_of_the_shoppers_tastes_earns_several_times_the_clicks_of_one_that_ignores_them():
    rng = random.Random(2)
    liked = disliked = 0.0
    for shopper in STORE.shoppers:
        others = {c.category_id for c in STORE.categories} - set(shopper.preferred_categories)
        fitting = ServedList("r1", products_in(set(shopper.preferred_categories), 10), "model")
        ignoring = ServedList("r2", products_in(others, 10), "bestsellers")
        for _ in range(40):
            liked += len(clicked_products(shopper, fitting, STORE, rng))
            disliked += len(clicked_products(shopper, ignoring, STORE, rng))
    assert liked > 5 * disliked > 0


def test_clicks_are_products_of_the_list_in_its_order_at_most_two_and_never_unknown_ids():
    rng = random.Random(3)
    listed = ("unknown-1", *products_in({c.category_id for c in STORE.categories}, 12), "unknown-2")
    for shopper in STORE.shoppers:
        for _ in range(20):
            clicks = clicked_products(shopper, ServedList("r", listed, "model"), STORE, rng)
            assert len(clicks) <= MAX_CLICKS
            assert [p for p in listed if p in clicks] == clicks
            assert not any(p.startswith("unknown") for p in clicks)


def test_a_visit_that_opens_on_a_list_clicks_it_then_views_what_it_clicked_as_valid_events():
    shopper = STORE.shoppers[0]
    served = ServedList("rec-42", products_in({shopper.preferred_categories[0]}, 10), "model")
    model = SessionModel(STORE, random.Random(5))
    visits = [model.session(shopper, NOW, served) for _ in range(50)]
    opened = [events for events in visits if events[0][1]["type"] == "click"]
    assert opened, "no visit clicked a list of the shopper's favourite category"
    for events in opened:
        click, view = events[0][1], events[1][1]
        assert click["rec_id"] == "rec-42" and click["product_id"] in served.products
        assert view["type"] == "product_view" and view["product_id"] == click["product_id"]
        assert view["source"] == "recommendation"
        for _, event in events:
            parse_event(
                event, now=NOW + timedelta(days=1), first_day=date(2026, 1, 1)
            )  # raises on anything the platform would refuse


def test_a_visit_without_a_list_never_clicks():
    model = SessionModel(STORE, random.Random(6))
    assert not any(e["type"] == "click" for s in STORE.shoppers for _, e in model.session(s, NOW))
