"""The attribution rule (recsys_core.attribution): which clicked list an order line is owed to."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from recsys_core.attribution import attributed_purchases
from recsys_core.events import format_ts

T0 = datetime(2026, 3, 1, 12, tzinfo=UTC)


def click(product: str, rec_id: str, hours: float, user: str = "u1") -> dict:
    ts = format_ts(T0 + timedelta(hours=hours))
    return {"type": "click", "user_id": user, "product_id": product, "rec_id": rec_id, "ts": ts}


def purchase(products: list[str], hours: float, user: str = "u1", order: str = "o1") -> dict:
    items = [{"product_id": p, "quantity": 2, "price": 5.0} for p in products]
    return {
        "type": "purchase",
        "user_id": user,
        "order_id": order,
        "items": items,
        "ts": format_ts(T0 + timedelta(hours=hours)),
    }


def owed(events, window=timedelta(hours=24)) -> list[tuple[str, str, str]]:
    return [(line.order_id, line.product_id, line.rec_id) for line in attributed_purchases(events, window)]


def test_a_purchase_within_the_window_after_a_click_is_owed_to_the_clicked_list():
    lines = attributed_purchases([click("p1", "r1", 0), purchase(["p1", "p2"], 23.9)])
    assert [(line.product_id, line.rec_id, line.quantity, line.price) for line in lines] == [("p1", "r1", 2, 5.0)]
    assert lines[0].clicked_at == T0 and lines[0].purchased_at == T0 + timedelta(hours=23.9)


def test_the_window_is_inclusive_and_nothing_later_is_attributed():
    assert owed([click("p1", "r1", 0), purchase(["p1"], 24)]) == [("o1", "p1", "r1")]
    assert owed([click("p1", "r1", 0), purchase(["p1"], 24.01)]) == []
    assert owed([click("p1", "r1", 0), purchase(["p1"], 2)], window=timedelta(hours=1)) == []


def test_the_last_click_before_the_purchase_wins_whatever_order_the_events_come_in():
    events = [purchase(["p1"], 5), click("p1", "r2", 3), click("p1", "r1", 1), click("p1", "r3", 6)]
    assert owed(events) == [("o1", "p1", "r2")]


def test_a_click_after_the_purchase_or_on_another_product_or_by_another_shopper_attributes_nothing():
    assert owed([purchase(["p1"], 1), click("p1", "r1", 2)]) == []
    assert owed([click("p2", "r1", 0), purchase(["p1"], 1)]) == []
    assert owed([click("p1", "r1", 0, user="u2"), purchase(["p1"], 1)]) == []


def test_every_purchase_after_one_click_is_owed_to_it():
    events = [click("p1", "r1", 0), purchase(["p1"], 1, order="o1"), purchase(["p1"], 2, order="o2")]
    assert owed(events) == [("o1", "p1", "r1"), ("o2", "p1", "r1")]


def test_a_click_and_a_purchase_of_one_millisecond_keep_the_order_given():
    assert owed([click("p1", "r1", 0), purchase(["p1"], 0)]) == [("o1", "p1", "r1")]
    assert owed([purchase(["p1"], 0), click("p1", "r1", 0)]) == []
