"""POST /v1/events against the real Kafka: acknowledged writes, all-or-nothing batches, bad input."""

from __future__ import annotations

import json
import uuid

import pytest

from tests.support.api import api_client


def test_one_event_is_acknowledged_and_lands_keyed_by_user(settings, events_topic, unique):
    user = f"u-{unique}"
    with api_client(settings) as client:
        response = client.post("/v1/events", json={"type": "product_view", "user_id": user, "product_id": "p1"})
    assert response.status_code == 202
    body = response.json()
    assert body["accepted"] == 1 and uuid.UUID(body["event_ids"][0])
    records = [r for r in events_topic.read(1) if r.key == user]
    assert [r.value["event_id"] for r in records] == body["event_ids"]
    assert records[0].value["type"] == "product_view" and records[0].value["source"] is None


def test_batch_of_every_type_is_acknowledged_in_order_with_given_ids(settings, events_topic, unique):
    user = f"u-{unique}"
    given = str(uuid.uuid4())
    batch = [
        {"type": "product_view", "user_id": user, "product_id": "p1", "source": "home", "event_id": given},
        {"type": "add_to_cart", "user_id": user, "product_id": "p1", "quantity": 2},
        {
            "type": "purchase",
            "user_id": user,
            "order_id": "o1",
            "items": [{"product_id": "p1", "quantity": 2, "price": 9.5}],
        },
        {"type": "rating", "user_id": user, "product_id": "p1", "score": 4.5, "ts": "2026-01-01T10:00:00+01:00"},
        {
            "event": "ProductView",
            "messageid": "m-1",
            "userid": user,
            "properties": {"productid": "p2"},
            "context": {"source": "search"},
            "timestamp": 1790000000,
        },
    ]
    with api_client(settings) as client:
        response = client.post("/v1/events", json={"events": batch})
    assert response.status_code == 202, response.text
    ids = response.json()["event_ids"]
    assert response.json()["accepted"] == 5 and ids[0] == given
    values = [r.value for r in events_topic.read(5) if r.key == user]
    assert [v["type"] for v in values] == ["product_view", "add_to_cart", "purchase", "rating", "product_view"]
    assert [v["event_id"] for v in values] == ids
    assert values[3]["ts"] == "2026-01-01T09:00:00.000Z"
    assert values[4]["product_id"] == "p2" and values[4]["source"] == "search"


def test_batch_with_one_invalid_event_produces_nothing_and_names_index_field_reason(settings, events_topic, unique):
    user = f"u-{unique}"
    batch = [
        {"type": "product_view", "user_id": user, "product_id": "p1"},
        {"type": "rating", "user_id": user, "product_id": "p1", "score": 4.2},
        {"type": "add_to_cart", "user_id": user, "product_id": "p1", "quantity": 0},
        {"type": "product_view", "user_id": user, "product_id": "p1", "ts": "2099-01-01T00:00:00Z"},
    ]
    with api_client(settings) as client:
        response = client.post("/v1/events", json={"events": batch})
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "invalid_input"
    assert [(d["index"], d["field"]) for d in error["details"]] == [(1, "score"), (2, "quantity"), (3, "ts")]
    assert all(d["reason"] for d in error["details"])
    assert [r for r in events_topic.read(1, timeout_s=3) if r.key == user] == []


@pytest.mark.parametrize(
    "body, field",
    [
        ({"type": "product_view", "product_id": "p1"}, "user_id"),
        ({"type": "product_view", "user_id": "x" * 129, "product_id": "p1"}, "user_id"),
        ({"type": "checkout", "user_id": "u"}, "type"),
        ({"type": "purchase", "user_id": "u", "order_id": "o", "items": []}, "items"),
        (
            {
                "type": "purchase",
                "user_id": "u",
                "order_id": "o",
                "items": [{"product_id": "p", "quantity": 1, "price": -1}],
            },
            "items[0].price",
        ),
        ({"type": "product_view", "user_id": "u", "product_id": "p", "event_id": "not-a-uuid"}, "event_id"),
        ({"type": "product_view", "user_id": "u", "product_id": "p", "ts": "2026-01-01T00:00:00"}, "ts"),
        ({"event": "ProductView", "userid": "u", "properties": {}}, "properties.productid"),
        ({"events": []}, "events"),
        ({"events": [{"type": "product_view", "user_id": "u", "product_id": "p"}] * 1001}, "events"),
    ],
)
def test_invalid_events_get_422_with_the_field(settings, body, field):
    with api_client(settings) as client:
        response = client.post("/v1/events", json=body)
    assert response.status_code == 422
    assert field in [d["field"] for d in response.json()["error"]["details"]]


@pytest.mark.parametrize(
    "ts, reason",
    [
        ("2025-12-31T23:59:59Z", "before RECSYS_EVENTS_START_DATE (2026-01-01)"),
        ("0001-01-01T00:00:00+01:00", "outside the range of dates"),
        ("9999-12-31T23:59:59Z", "is more than 5 minutes in the future"),
    ],
)
def test_an_event_the_lake_cannot_place_gets_422_with_the_reason_and_nothing_is_written(
    settings, events_topic, unique, ts, reason
):
    user = f"u-{unique}"
    batch = [
        {"type": "product_view", "user_id": user, "product_id": "p1"},
        {"type": "product_view", "user_id": user, "product_id": "p2", "ts": ts},
    ]
    with api_client(settings) as client:
        response = client.post("/v1/events", json={"events": batch})
    assert response.status_code == 422
    [detail] = response.json()["error"]["details"]
    assert (detail["index"], detail["field"]) == (1, "ts") and reason in detail["reason"]
    assert [r for r in events_topic.read(1, timeout_s=3) if r.key == user] == []


@pytest.mark.parametrize(
    "content, status",
    [
        (b"{not json", 400),
        (b"[1, 2]", 400),
        (
            json.dumps({"events": [{"type": "product_view", "user_id": "u", "product_id": "p" * 100}] * 1000}).encode()
            + b" " * (1024 * 1024),
            413,
        ),
    ],
)
def test_malformed_or_oversized_bodies_get_the_error_shape(settings, content, status):
    with api_client(settings) as client:
        response = client.post("/v1/events", content=content, headers={"content-type": "application/json"})
    assert response.status_code == status
    assert set(response.json()["error"]) == {"code", "message", "details"}


def test_write_routes_need_a_valid_api_key_when_keys_are_set(settings, unique):
    event = {"type": "product_view", "user_id": f"u-{unique}", "product_id": "p1"}
    with api_client(settings, api_keys=("k1", "k2")) as client:
        refused = client.post("/v1/events", json=event)
        assert refused.status_code == 401 and refused.json()["error"]["code"] == "unauthorized"
        assert client.post("/v1/events", json=event, headers={"X-API-Key": "nope"}).status_code == 401
        assert client.put("/v1/products", json=[{"product_id": "p", "category_id": "c"}]).status_code == 401
        assert client.delete(f"/v1/users/u-{unique}/history/p1").status_code == 401
        assert client.post("/v1/events", json=event, headers={"X-API-Key": "k2"}).status_code == 202
        assert client.get(f"/v1/users/u-{unique}/history").status_code == 200
