"""Event validation: the one rule set shared by the API, the streaming job and the batch layer."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta

import pytest

from recsys_core.events import (
    InvalidEvent,
    changes_shopper_state,
    format_ts,
    history_delete_event,
    impression_event,
    parse_batch,
    parse_event,
)

NOW = datetime(2026, 11, 22, 12, 0, 0, tzinfo=UTC)
FIRST_DAY = date(2026, 1, 1)  # the lake's first day (RECSYS_EVENTS_START_DATE)


def parse(raw, **kwargs):
    return parse_event(raw, NOW, first_day=FIRST_DAY, **kwargs)


def fields(raw, **kwargs):
    with pytest.raises(InvalidEvent) as error:
        parse(raw, **kwargs)
    return {e.field: e.reason for e in error.value.errors}


def test_view_gets_an_event_id_and_the_current_time_when_absent():
    event = parse({"type": "product_view", "user_id": "u1", "product_id": "p1"})
    assert event["ts"] == "2026-11-22T12:00:00.000Z"
    assert len(event["event_id"]) == 36
    assert event["source"] is None


def test_the_same_event_id_is_kept_so_downstream_can_deduplicate():
    raw = {
        "type": "product_view",
        "user_id": "u1",
        "product_id": "p1",
        "event_id": "6F9619FF-8B86-D011-B42D-00CF4FC964FF",
    }
    assert parse(raw)["event_id"] == "6f9619ff-8b86-d011-b42d-00cf4fc964ff"


def test_timestamps_are_normalised_to_utc_milliseconds():
    event = parse({"type": "product_view", "user_id": "u", "product_id": "p", "ts": "2026-11-22T13:00:00.123456+01:00"})
    assert event["ts"] == "2026-11-22T12:00:00.123Z"


def test_more_than_five_minutes_in_the_future_is_rejected_but_four_is_fine():
    base = {"type": "product_view", "user_id": "u", "product_id": "p"}
    assert parse({**base, "ts": format_ts(NOW + timedelta(minutes=4))})
    assert "ts" in fields({**base, "ts": format_ts(NOW + timedelta(minutes=6))})


@pytest.mark.parametrize("ts", ["2025-12-31T23:59:59.999Z", "2026-01-01T00:30:00+01:00", "1970-01-01T00:00:00Z"])
def test_an_event_before_the_lakes_first_day_is_rejected_naming_the_setting(ts):
    reason = fields({"type": "product_view", "user_id": "u", "product_id": "p", "ts": ts})["ts"]
    assert reason.startswith("before RECSYS_EVENTS_START_DATE (2026-01-01)")
    assert parse({"type": "product_view", "user_id": "u", "product_id": "p", "ts": "2026-01-01T00:00:00Z"})


def test_the_first_day_applies_to_every_format_and_to_the_default_time_now():
    clickstream = {"event": "ProductView", "userid": "u", "properties": {"productid": "p"}, "timestamp": 1_000_000}
    assert fields(clickstream)["timestamp"].startswith("before RECSYS_EVENTS_START_DATE")
    with pytest.raises(InvalidEvent, match="ts: before RECSYS_EVENTS_START_DATE"):
        parse_event({"type": "product_view", "user_id": "u", "product_id": "p"}, NOW, first_day=date(2027, 1, 1))
    with pytest.raises(InvalidEvent, match="ts: before RECSYS_EVENTS_START_DATE"):
        history_delete_event("u", "p", NOW, first_day=date(2027, 1, 1))


@pytest.mark.parametrize("ts", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-05:00"])
def test_a_timestamp_with_no_utc_instant_is_rejected_not_an_overflow(ts):
    assert (
        "outside the range of dates"
        in fields({"type": "product_view", "user_id": "u", "product_id": "p", "ts": ts})["ts"]
    )


def test_a_timestamp_far_in_the_future_has_no_day_in_the_lake_and_is_rejected():
    assert (
        fields({"type": "product_view", "user_id": "u", "product_id": "p", "ts": "9999-12-31T23:59:59Z"})["ts"]
        == "is more than 5 minutes in the future"
    )


def test_timestamp_without_zone_is_rejected():
    assert (
        "time zone"
        in fields({"type": "product_view", "user_id": "u", "product_id": "p", "ts": "2026-11-22T12:00:00"})["ts"]
    )


def test_every_problem_of_an_event_is_reported_at_once():
    errors = fields(
        {
            "type": "purchase",
            "user_id": "x" * 129,
            "event_id": "nope",
            "items": [{"product_id": "a", "quantity": 0, "price": -1}, "junk"],
        }
    )
    assert set(errors) == {"user_id", "event_id", "order_id", "items[0].quantity", "items[0].price", "items[1]"}


@pytest.mark.parametrize(
    "score, ok",
    [(0.5, True), (5, True), (3.5, True), (0, False), (5.5, False), (2.3, False), ("4", False), (True, False)],
)
def test_rating_scores_go_from_half_to_five_in_half_steps(score, ok):
    raw = {"type": "rating", "user_id": "u", "product_id": "p", "score": score}
    if ok:
        assert parse(raw)["score"] == float(score)
    else:
        assert "score" in fields(raw)


def test_add_to_cart_needs_a_whole_positive_quantity():
    assert "quantity" in fields({"type": "add_to_cart", "user_id": "u", "product_id": "p", "quantity": 1.5})
    assert parse({"type": "add_to_cart", "user_id": "u", "product_id": "p", "quantity": 2})["quantity"] == 2


def test_purchase_keeps_items_with_optional_price():
    event = parse(
        {
            "type": "purchase",
            "user_id": "u",
            "order_id": "o1",
            "items": [{"product_id": "a", "quantity": 2, "price": 9.5}, {"product_id": "b", "quantity": 1}],
        }
    )
    assert event["items"] == [
        {"product_id": "a", "quantity": 2, "price": 9.5},
        {"product_id": "b", "quantity": 1, "price": None},
    ]


def test_clients_cannot_send_history_delete_but_the_platform_can():
    assert "type" in fields({"type": "history_delete", "user_id": "u", "product_id": "p"})
    event = history_delete_event("u", "p", NOW, first_day=FIRST_DAY)
    assert event["type"] == "history_delete" and event["product_id"] == "p"


def test_a_click_names_the_product_and_the_list_it_was_clicked_in_known_or_not():
    event = parse({"type": "click", "user_id": " u ", "product_id": "p", "rec_id": "an-old-list"})
    assert {k: event[k] for k in ("type", "user_id", "product_id", "rec_id")} == {
        "type": "click",
        "user_id": "u",
        "product_id": "p",
        "rec_id": "an-old-list",
    }
    assert fields({"type": "click", "user_id": "u"}) == {"product_id": "is required", "rec_id": "is required"}
    assert "rec_id" in fields({"type": "click", "user_id": "u", "product_id": "p", "rec_id": ""})


def test_impressions_come_from_the_platform_only_and_read_back_unchanged():
    rec_id = str(uuid.uuid4())
    event = impression_event(rec_id, "u", "recommendations", "realtime", ["a", "b"], model_version="v1", now=NOW)
    assert "type" in fields(event)
    assert parse(event, allow_internal=True) == event
    assert event["event_id"] == rec_id and event["experiment"] is None and event["variant"] is None
    shop = impression_event(rec_id, None, "shop_bestsellers", "bestsellers", [], now=NOW)
    assert parse(shop, allow_internal=True)["user_id"] is None
    assert set(fields({**event, "products": "a,b", "surface": None}, allow_internal=True)) == {"products", "surface"}


def test_clicks_and_impressions_change_no_shopper_state():
    click = parse({"type": "click", "user_id": "u", "product_id": "p", "rec_id": "r"})
    view = parse({"type": "product_view", "user_id": "u", "product_id": "p"})
    impression = impression_event(str(uuid.uuid4()), "u", "history", "browsing_history", ["p"], now=NOW)
    assert [changes_shopper_state(e) for e in (click, impression, view)] == [False, False, True]


def test_clickstream_product_view_is_normalised():
    event = parse(
        {
            "event": "ProductView",
            "messageid": "msg-1",
            "userid": "u9",
            "properties": {"productid": "p7"},
            "context": {"source": "homepage"},
            "timestamp": 1795336800,
        }
    )
    assert event["type"] == "product_view" and event["user_id"] == "u9" and event["product_id"] == "p7"
    assert event["source"] == "homepage"
    assert event["ts"] == "2026-11-22T08:40:00.000Z"
    # the same message id always maps to the same event id, so a replay is deduplicated
    again = parse({"event": "ProductView", "messageid": "msg-1", "userid": "u9", "properties": {"productid": "p7"}})
    assert again["event_id"] == event["event_id"]


def test_clickstream_errors_name_the_clickstream_fields():
    assert set(fields({"event": "ProductView", "messageid": "m"})) == {"userid", "properties.productid"}
    assert "event" in fields({"event": "Checkout", "userid": "u", "properties": {"productid": "p"}})


def test_batch_reports_index_field_and_reason_of_each_bad_event():
    events, errors = parse_batch(
        [
            {"type": "product_view", "user_id": "u", "product_id": "p"},
            {"type": "teleport", "user_id": "u"},
            "not an object",
        ],
        NOW,
        first_day=FIRST_DAY,
    )
    assert len(events) == 1
    assert {(e["index"], e["field"]) for e in errors} == {(1, "type"), (2, "")}
