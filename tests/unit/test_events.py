"""Event validation: the one rule set shared by the API, the streaming job and the batch layer."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from recsys_core.events import InvalidEvent, format_ts, history_delete_event, parse_batch, parse_event

NOW = datetime(2026, 11, 22, 12, 0, 0, tzinfo=UTC)


def fields(raw, **kwargs):
    with pytest.raises(InvalidEvent) as error:
        parse_event(raw, NOW, **kwargs)
    return {e.field: e.reason for e in error.value.errors}


def test_view_gets_an_event_id_and_the_current_time_when_absent():
    event = parse_event({"type": "product_view", "user_id": "u1", "product_id": "p1"}, NOW)
    assert event["ts"] == "2026-11-22T12:00:00.000Z"
    assert len(event["event_id"]) == 36
    assert event["source"] is None


def test_the_same_event_id_is_kept_so_downstream_can_deduplicate():
    raw = {"type": "product_view", "user_id": "u1", "product_id": "p1",
           "event_id": "6F9619FF-8B86-D011-B42D-00CF4FC964FF"}
    assert parse_event(raw, NOW)["event_id"] == "6f9619ff-8b86-d011-b42d-00cf4fc964ff"


def test_timestamps_are_normalised_to_utc_milliseconds():
    event = parse_event({"type": "product_view", "user_id": "u", "product_id": "p",
                         "ts": "2026-11-22T13:00:00.123456+01:00"}, NOW)
    assert event["ts"] == "2026-11-22T12:00:00.123Z"


def test_more_than_five_minutes_in_the_future_is_rejected_but_four_is_fine():
    base = {"type": "product_view", "user_id": "u", "product_id": "p"}
    assert parse_event({**base, "ts": format_ts(NOW + timedelta(minutes=4))}, NOW)
    assert "ts" in fields({**base, "ts": format_ts(NOW + timedelta(minutes=6))})


def test_timestamp_without_zone_is_rejected():
    assert "time zone" in fields({"type": "product_view", "user_id": "u", "product_id": "p",
                                  "ts": "2026-11-22T12:00:00"})["ts"]


def test_every_problem_of_an_event_is_reported_at_once():
    errors = fields({"type": "purchase", "user_id": "x" * 129, "event_id": "nope",
                     "items": [{"product_id": "a", "quantity": 0, "price": -1}, "junk"]})
    assert set(errors) == {"user_id", "event_id", "order_id", "items[0].quantity", "items[0].price", "items[1]"}


@pytest.mark.parametrize("score, ok", [(0.5, True), (5, True), (3.5, True), (0, False), (5.5, False),
                                       (2.3, False), ("4", False), (True, False)])
def test_rating_scores_go_from_half_to_five_in_half_steps(score, ok):
    raw = {"type": "rating", "user_id": "u", "product_id": "p", "score": score}
    if ok:
        assert parse_event(raw, NOW)["score"] == float(score)
    else:
        assert "score" in fields(raw)


def test_add_to_cart_needs_a_whole_positive_quantity():
    assert "quantity" in fields({"type": "add_to_cart", "user_id": "u", "product_id": "p", "quantity": 1.5})
    assert parse_event({"type": "add_to_cart", "user_id": "u", "product_id": "p", "quantity": 2}, NOW)["quantity"] == 2


def test_purchase_keeps_items_with_optional_price():
    event = parse_event({"type": "purchase", "user_id": "u", "order_id": "o1",
                         "items": [{"product_id": "a", "quantity": 2, "price": 9.5}, {"product_id": "b", "quantity": 1}]},
                        NOW)
    assert event["items"] == [{"product_id": "a", "quantity": 2, "price": 9.5},
                              {"product_id": "b", "quantity": 1, "price": None}]


def test_clients_cannot_send_history_delete_but_the_platform_can():
    assert "type" in fields({"type": "history_delete", "user_id": "u", "product_id": "p"})
    event = history_delete_event("u", "p", NOW)
    assert event["type"] == "history_delete" and event["product_id"] == "p"


def test_clickstream_product_view_is_normalised():
    event = parse_event({"event": "ProductView", "messageid": "msg-1", "userid": "u9",
                         "properties": {"productid": "p7"}, "context": {"source": "homepage"},
                         "timestamp": 1795336800}, NOW)
    assert event["type"] == "product_view" and event["user_id"] == "u9" and event["product_id"] == "p7"
    assert event["source"] == "homepage"
    assert event["ts"] == "2026-11-22T08:40:00.000Z"
    # the same message id always maps to the same event id, so a replay is deduplicated
    again = parse_event({"event": "ProductView", "messageid": "msg-1", "userid": "u9",
                         "properties": {"productid": "p7"}}, NOW)
    assert again["event_id"] == event["event_id"]


def test_clickstream_errors_name_the_clickstream_fields():
    assert set(fields({"event": "ProductView", "messageid": "m"})) == {"userid", "properties.productid"}
    assert "event" in fields({"event": "Checkout", "userid": "u", "properties": {"productid": "p"}})


def test_batch_reports_index_field_and_reason_of_each_bad_event():
    events, errors = parse_batch([{"type": "product_view", "user_id": "u", "product_id": "p"},
                                  {"type": "teleport", "user_id": "u"},
                                  "not an object"], NOW)
    assert len(events) == 1
    assert {(e["index"], e["field"]) for e in errors} == {(1, "type"), (2, "")}
