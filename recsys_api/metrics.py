"""Prometheus metrics: requests and latency by route template, failed writes and impressions, and `/metrics`."""

from __future__ import annotations

import os
import time

from litestar import Controller, Response, get
from litestar.exceptions import HTTPException
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

METRICS_PATH = "/metrics"
LABELS = ("method", "path", "status_code")

# Module-level: one registration per process, however many apps a process builds.
REQUESTS = Counter("recsys_api_requests_total", "Requests answered, by route template and status", LABELS)
REQUEST_SECONDS = Histogram(
    "recsys_api_request_duration_seconds", "From routing to the last byte of the answer, in seconds", LABELS
)
PRODUCE_FAILURES = Counter(
    "recsys_api_produce_failures_total", "Writes Kafka did not acknowledge in time (answered 503)", ["topic"]
)
IMPRESSION_FAILURES = Counter(
    "recsys_api_impression_failures_total",
    "Impressions Kafka did not acknowledge; each is sent again while the process lives",
)
IMPRESSIONS_DROPPED = Counter(
    "recsys_api_impressions_dropped_total",
    "Impressions not recorded because RECSYS_API_IMPRESSION_QUEUE others were still unacknowledged",
)

# The status of a request whose client went away before the answer started (the server cancels
# its handler): nginx's "client closed request", so such requests stand apart from every answer.
CLIENT_CLOSED_REQUEST = 499

# A route's series, looked up once: `labels()` checks and joins its arguments under a lock on
# every call, which at a few thousand reads a second is a visible share of a read's CPU.
_series: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}


def _record(method: str, path: str, status: int, seconds: float) -> None:
    key = (method, path, status)
    series = _series.get(key)
    if series is None:
        values = (method, path, str(status))
        series = _series[key] = (REQUESTS.labels(*values), REQUEST_SECONDS.labels(*values))
    series[0].inc()
    series[1].observe(seconds)


def count_requests(app: ASGIApp) -> ASGIApp:
    """Middleware (after routing): each request counted and timed under its route template.

    Its own rather than Litestar's Prometheus middleware, which builds a Request and label dicts
    on every call. A request that raises past it (a missing key) is counted with the status its
    exception answers with; one cancelled before its answer started, with CLIENT_CLOSED_REQUEST.
    """

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        path = scope["path_template"]
        if path == METRICS_PATH:
            await app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 0

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await app(scope, receive, send_status)
        except Exception as exc:
            status = status or (exc.status_code if isinstance(exc, HTTPException) else 500)
            raise
        finally:
            _record(scope["method"], path, status or CLIENT_CLOSED_REQUEST, time.perf_counter() - started)

    return middleware


class MetricsController(Controller):
    path = METRICS_PATH

    @get(
        summary="Prometheus metrics",
        description="The metrics in Prometheus' text format: this process's, or with PROMETHEUS_MULTIPROC_DIR "
        "set (`recsys api --workers N`), every worker's.",
    )
    async def metrics(self) -> Response[bytes]:
        registry = REGISTRY
        if "PROMETHEUS_MULTIPROC_DIR" in os.environ:
            registry = CollectorRegistry()
            MultiProcessCollector(registry)
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
