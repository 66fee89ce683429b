"""The storefront page in headless Chromium: clicks become real events, the lists follow within seconds.

Everything is real: the API and the streaming job run as `recsys api` and `recsys stream`
processes on the test stack; Chromium (Debian's) is driven by Playwright.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from datetime import UTC, datetime

import pytest

from recsys_io.mongo import BESTSELLERS, ONLINE_METRICS, PRODUCTS, SIMILAR_ITEMS
from tests.support.api import TopicReader
from tests.support.isolation import env_of
from tests.support.stream import wait_for

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (make browser)")

API_KEY = "storefront-test-key"
READ_KEY = "storefront-read-key"  # the shopper's lists need it: the page sends it on reads


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _seed_store(db, unique: str) -> dict[str, list[str]]:
    """Two categories of six products; neighbours within a category; bestsellers per scope."""
    now = datetime.now(UTC)
    catalog = {
        f"{unique}-shoes": [f"{unique}-s{i}" for i in range(6)],
        f"{unique}-hats": [f"{unique}-h{i}" for i in range(6)],
    }
    for category, products in catalog.items():
        db[PRODUCTS].insert_many(
            [
                {
                    "_id": p,
                    "product_id": p,
                    "category_id": category,
                    "name": f"Product {p[-2:]}",
                    "description": "",
                    "price": 10.0 + i,
                    "updated_at": now,
                }
                for i, p in enumerate(products)
            ]
        )
        db[SIMILAR_ITEMS].insert_many(
            [
                {
                    "_id": p,
                    "product_id": p,
                    "source": "als",
                    "model_version": None,
                    "computed_at": now,
                    "neighbours": [
                        {"product_id": q, "score": 1.0 - 0.1 * j} for j, q in enumerate(x for x in products if x != p)
                    ],
                }
                for p in products
            ]
        )
        db[BESTSELLERS].insert_one(
            {
                "_id": category,
                "scope": category,
                "window_days": 30,
                "computed_at": now,
                "products": [{"product_id": p, "buyers": 10 - i} for i, p in enumerate(products)],
            }
        )
    everything = [p for products in catalog.values() for p in products]
    db[BESTSELLERS].insert_one(
        {
            "_id": "global",
            "scope": "global",
            "window_days": 30,
            "computed_at": now,
            "products": [{"product_id": p, "buyers": 20 - i} for i, p in enumerate(everything)],
        }
    )
    return catalog


def _wait_http(url: str, proc: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"process exited with {proc.returncode}"
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.3)
    raise AssertionError(f"{url} did not answer")


@contextmanager
def _running(settings, tmp_path, commands: tuple[str, ...]):
    """`recsys <command>` for each command on the test stack; yields the API's base URL."""
    port = _free_port()
    env = {
        **os.environ,
        **env_of(settings),
        "RECSYS_API_KEYS": API_KEY,
        "RECSYS_API_READ_KEYS": READ_KEY,
        "RECSYS_API_PORT": str(port),
        "RECSYS_STREAM_TRIGGER_SECONDS": "0.5",
        "RECSYS_MIN_LIST_SIZE": "1",
    }
    logs = tmp_path / "logs"
    logs.mkdir()
    procs = {}
    for name in commands:
        procs[name] = subprocess.Popen(
            [sys.executable, "-m", "recsys_cli.main", name],
            env=env,
            stdout=open(logs / f"{name}.log", "wb"),
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_http(f"http://127.0.0.1:{port}/health", procs["api"])
        yield f"http://127.0.0.1:{port}"
    finally:
        for proc in procs.values():
            proc.terminate()
        for proc in procs.values():
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
        for name in procs:
            print(f"--- {name} log tail ---\n" + "\n".join((logs / f"{name}.log").read_text().splitlines()[-15:]))


@pytest.fixture
def platform(settings, mongo_db, unique, tmp_path):
    """`recsys api` and `recsys stream` on the test stack, with a serving database of this test's own."""
    catalog = _seed_store(mongo_db, unique)
    with _running(settings, tmp_path, ("stream", "api")) as base:
        yield base, catalog


@contextmanager
def _browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-quic",
                "--no-first-run",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        try:
            yield browser
        finally:
            browser.close()


def _ids(page, testid: str) -> list[str]:
    return page.eval_on_selector_all(
        f'[data-testid="{testid}"] [data-testid="product"]', "cards => cards.map(c => c.dataset.productId)"
    )


def test_clicks_show_in_history_newest_first_and_change_recommendations(platform, settings, unique):
    base, catalog = platform
    shoes = catalog[f"{unique}-shoes"]
    user = f"{unique}-shopper"
    with _browser() as browser:
        page = browser.new_page()
        page.goto(f"{base}/demo?user={user}#key={API_KEY}&read={READ_KEY}")
        page.get_by_role("button", name=f"{unique}-shoes").click()
        page.wait_for_selector(f'[data-testid="catalog"] [data-product-id="{shoes[0]}"]')
        wait_for(lambda: page.inner_text('[data-testid="recs-meta"]'), 20, "the first recommendations")
        before = (_ids(page, "recommendations"), page.inner_text('[data-testid="recs-meta"]'))

        for product_id in shoes[3:0:-1]:  # s3, s2, s1: s1 is the newest view
            page.click(f'[data-testid="catalog"] [data-product-id="{product_id}"]')
            page.wait_for_timeout(300)

        history = wait_for(
            lambda: _ids(page, "history") if len(_ids(page, "history")) >= 3 else None,
            # The first micro-batch of a fresh streaming job can take a minute on a busy machine.
            180,
            "three products in the history",
        )
        assert history[:3] == [shoes[1], shoes[2], shoes[3]]
        after = wait_for(
            lambda: (
                (_ids(page, "recommendations"), page.inner_text('[data-testid="recs-meta"]'))
                if (_ids(page, "recommendations"), page.inner_text('[data-testid="recs-meta"]')) != before
                else None
            ),
            60,
            "the recommendations to change",
        )
        assert after != before

        page.click(f'[data-testid="history"] [data-product-id="{shoes[2]}"] [data-testid="delete"]')
        remaining = wait_for(
            lambda: _ids(page, "history") if shoes[2] not in _ids(page, "history") else None,
            20,
            "the deleted product to leave the history",
        )
        assert remaining[:2] == [shoes[1], shoes[3]]

        # A product clicked in a served list sends a click naming that list, then its view.
        events = TopicReader(settings, settings.topics.events)
        try:
            clicked = _ids(page, "recommendations")[0]
            page.click(f'[data-testid="recommendations"] [data-product-id="{clicked}"]')
            records = [r.value for r in events.read(2, impressions=True, timeout_s=20)]
            records += [r.value for r in events.read(1, impressions=True, timeout_s=3)]
        finally:
            events.close()
        click = next(e for e in records if e["type"] == "click")
        assert click["product_id"] == clicked and click["user_id"] == user and click["rec_id"]
        assert any(e["type"] == "product_view" and e["product_id"] == clicked for e in records)


def _metrics_row(day: str, strategy: str, variant: str, lists: int, shown: int, clicks: int, orders: int) -> dict:
    return {
        "_id": f"{day}|{strategy}|{variant}",
        "day": day,
        "surface": "recommendations",
        "strategy": strategy,
        "model_version": None,
        "experiment": "home",
        "variant": variant,
        "lists": lists,
        "products_shown": shown,
        "clicks": clicks,
        "ctr": clicks / shown,
        "orders": orders,
        "conversion": orders / lists,
        "revenue": 0.0,
        "coverage": 0.1,
    }


def _points(page, chart: str) -> list[tuple[str, str, str]]:
    return sorted(
        tuple(p)
        for p in page.eval_on_selector_all(
            f'[data-testid="{chart}"] [data-testid="point"]',
            "points => points.map(p => [p.dataset.strategy, p.dataset.day, p.dataset.value])",
        )
    )


def test_metrics_page_plots_ctr_and_conversion_per_strategy_by_day(settings, mongo_db, tmp_path):
    """Two strategies over two days; the model's second day has two rows (two variants), which the
    chart sums before dividing."""
    mongo_db[ONLINE_METRICS].insert_many(
        [
            _metrics_row("2026-11-01", "bestsellers", "a", 10, 50, 5, 1),
            _metrics_row("2026-11-02", "bestsellers", "a", 10, 50, 10, 2),
            _metrics_row("2026-11-01", "als", "b", 10, 50, 15, 3),
            _metrics_row("2026-11-02", "als", "b", 10, 50, 20, 4),
            _metrics_row("2026-11-02", "als", "c", 10, 50, 0, 0),
        ]
    )
    with _running(settings, tmp_path, ("api",)) as base, _browser() as browser:
        page = browser.new_page()
        page.goto(f"{base}/demo/metrics?from=2026-11-01&to=2026-11-02")
        wait_for(lambda: "rows" in page.inner_text('[data-testid="metrics-status"]') or None, 20, "the metrics")
        assert page.inner_text('[data-testid="metrics-status"]') == "5 rows, 2 strategies"
        assert page.eval_on_selector_all(
            '[data-testid="ctr-chart"] [data-testid="series"]', "lines => lines.map(l => l.dataset.strategy).sort()"
        ) == ["als", "bestsellers"]
        assert _points(page, "ctr-chart") == [
            ("als", "2026-11-01", "0.3000"),
            ("als", "2026-11-02", "0.2000"),
            ("bestsellers", "2026-11-01", "0.1000"),
            ("bestsellers", "2026-11-02", "0.2000"),
        ]
        assert _points(page, "conversion-chart") == [
            ("als", "2026-11-01", "0.3000"),
            ("als", "2026-11-02", "0.2000"),
            ("bestsellers", "2026-11-01", "0.1000"),
            ("bestsellers", "2026-11-02", "0.2000"),
        ]
