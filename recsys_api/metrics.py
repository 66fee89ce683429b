"""Prometheus metrics: requests and latency by route template (Litestar's middleware), failed writes and impressions."""

from __future__ import annotations

from litestar.plugins.prometheus import PrometheusConfig, PrometheusController
from prometheus_client import Counter

# Module-level: one registration per process, however many apps a process builds.
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

PROMETHEUS = PrometheusConfig(app_name="recsys-api", prefix="recsys_api", group_path=True, exclude=["^/metrics$"])


class MetricsController(PrometheusController):
    path = "/metrics"
    include_in_schema = True
