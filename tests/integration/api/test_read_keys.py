"""RECSYS_API_READ_KEYS: a shopper's data needs a read key (or a write key); shop-wide routes stay open."""

from __future__ import annotations

import pytest

from recsys_io.mongo import BESTSELLERS, HISTORY, PRODUCTS
from tests.support.api import api_client, bestsellers, history, metric, product

KEYS = {"api_keys": ("write-1",), "api_read_keys": ("read-1", "read-2")}
USER = "u1"
# (path, headers): every route that reveals one shopper's data.
SHOPPER_ROUTES = [
    (f"/v1/users/{USER}/history", {}),
    (f"/v1/users/{USER}/bestsellers", {}),
    (f"/v1/users/{USER}/recommendations", {}),
    ("/api/v1/user_nav_history_latest_products", {"user-id": USER}),
    ("/api/v1/user_history_recommendations", {"user-id": USER}),
    ("/demo/users", {}),
]
OPEN_ROUTES = [
    "/v1/bestsellers",
    "/v1/bestsellers?category=c1",
    "/v1/products",
    "/v1/products/p1",
    "/v1/products/p1/similar",
    "/health",
    "/ready",
    "/schema/openapi.json",
    "/demo",
    "/demo/categories",
    "/metrics",
]


@pytest.fixture
def shop(mongo_db):
    mongo_db[PRODUCTS].insert_many([product(f"p{i}", "c1") for i in range(6)])
    mongo_db[BESTSELLERS].insert_many(
        [
            bestsellers("global", [(f"p{i}", 9 - i) for i in range(6)]),
            bestsellers("c1", [(f"p{i}", 9 - i) for i in range(6)]),
        ]
    )
    mongo_db[HISTORY].insert_one(history(USER, [f"p{i}" for i in range(6)]))


@pytest.mark.parametrize("path, headers", SHOPPER_ROUTES, ids=[path for path, _ in SHOPPER_ROUTES])
def test_a_shoppers_data_needs_a_read_key_or_a_write_key(settings, shop, path, headers):
    with api_client(settings, **KEYS) as client:
        without = client.get(path, headers=headers)
        wrong = client.get(path, headers={**headers, "X-API-Key": "read-3"})
        with_read = client.get(path, headers={**headers, "X-API-Key": "read-2"})
        with_write = client.get(path, headers={**headers, "X-API-Key": "write-1"})
    assert (without.status_code, wrong.status_code) == (401, 401)
    assert without.json()["error"]["code"] == "unauthorized"
    assert (with_read.status_code, with_write.status_code) == (200, 200)
    # The same answer, but for the rec_id each served list gets of its own.
    same = [{k: v for k, v in r.json().items() if k != "rec_id"} for r in (with_read, with_write)]
    assert same[0] == same[1] and same[0]


@pytest.mark.parametrize("path", OPEN_ROUTES)
def test_shop_wide_routes_the_catalog_and_operations_stay_open(settings, shop, path):
    with api_client(settings, **KEYS) as client:
        assert client.get(path).status_code == 200


def test_a_read_key_is_not_a_write_key_and_without_read_keys_reads_are_open(settings, shop):
    event = {"type": "product_view", "user_id": USER, "product_id": "p1"}
    with api_client(settings, **KEYS) as client:
        assert client.post("/v1/events", json=event, headers={"X-API-Key": "read-1"}).status_code == 401
        assert client.delete(f"/v1/users/{USER}/history/p1", headers={"X-API-Key": "read-1"}).status_code == 401
    with api_client(settings, api_keys=("write-1",)) as client:
        assert all(client.get(path, headers=headers).status_code == 200 for path, headers in SHOPPER_ROUTES)


def test_the_schema_documents_which_routes_need_which_key(settings):
    with api_client(settings, **KEYS) as client:
        schema = client.get("/schema/openapi.json").json()
    schemes = schema["components"]["securitySchemes"]
    assert {name: (s["type"], s["in"], s["name"]) for name, s in schemes.items()} == {
        "ApiKey": ("apiKey", "header", "X-API-Key"),
        "ReadKey": ("apiKey", "header", "X-API-Key"),
    }
    security = {
        (path, method): operation.get("security")
        for path, item in schema["paths"].items()
        for method, operation in item.items()
        if isinstance(operation, dict)
    }
    for path, _ in SHOPPER_ROUTES:
        assert security[(path.replace(USER, "{user_id}"), "get")] == [{"ReadKey": []}], path
        assert "401" in schema["paths"][path.replace(USER, "{user_id}")]["get"]["responses"]
    assert security[("/v1/events", "post")] == [{"ApiKey": []}]
    for path in ("/v1/bestsellers", "/v1/products/{product_id}", "/health"):
        assert security[(path, "get")] is None


def _requests(metrics: str, route: str, status: int) -> float:
    return metric(metrics, f'recsys_api_requests_total{{method="GET",path="{route}",status_code="{status}"}}')


def test_requests_are_counted_by_route_template_with_the_status_they_were_answered_with(settings, shop):
    route = "/v1/users/{user_id}/history"
    with api_client(settings, **KEYS) as client:
        before = client.get("/metrics").text
        assert client.get(f"/v1/users/{USER}/history").status_code == 401  # raised by the key check
        assert client.get(f"/v1/users/{USER}/history", headers={"X-API-Key": "read-1"}).status_code == 200
        after = client.get("/metrics").text
    assert _requests(after, route, 401) - _requests(before, route, 401) == 1
    assert _requests(after, route, 200) - _requests(before, route, 200) == 1
    assert 'path="/metrics"' not in after
    assert 'recsys_api_request_duration_seconds_count{method="GET",path="/v1/users/{user_id}/history"' in after
