"""The API's request counter (recsys_api.metrics.count_requests) on bare ASGI apps: no server."""

from __future__ import annotations

import asyncio

import pytest
from prometheus_client import REGISTRY

from recsys_api.metrics import CLIENT_CLOSED_REQUEST, count_requests


def _count(path: str, status: int) -> float:
    labels = {"method": "GET", "path": path, "status_code": str(status)}
    return REGISTRY.get_sample_value("recsys_api_requests_total", labels) or 0.0


def _call(app, path: str) -> None:
    scope = {"type": "http", "method": "GET", "path": path, "path_template": path}

    async def receive():
        return {"type": "http.request"}

    async def send(message):
        pass

    asyncio.run(count_requests(app)(scope, receive, send))


def test_an_answer_is_counted_with_its_status():
    async def answers(scope, receive, send):
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    before = _count("/test/answers", 204)
    _call(answers, "/test/answers")
    assert _count("/test/answers", 204) == before + 1


def test_a_request_cancelled_before_its_answer_started_is_counted_as_client_closed_request():
    async def client_went_away(scope, receive, send):
        raise asyncio.CancelledError

    before = _count("/test/gone", CLIENT_CLOSED_REQUEST)
    with pytest.raises(asyncio.CancelledError):
        _call(client_went_away, "/test/gone")
    assert _count("/test/gone", CLIENT_CLOSED_REQUEST) == before + 1
    assert _count("/test/gone", 0) == 0
