"""The simulator's feeds against the real test stack: Kafka and the MongoDB-compatible server."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import pytest
from kafka import TopicPartition
from kafka.partitioner.default import murmur2
from typer.testing import CliRunner

from recsys_cli.main import app
from recsys_core.catalog import parse_product
from recsys_core.settings import Settings
from recsys_io.kafka import make_consumer
from recsys_io.mongo import BESTSELLERS, PRODUCTS
from recsys_simulator import StoreConfig, build_store, history_events, load_catalog, replay_file, run_live, send_history
from recsys_simulator.via_api import ApiRefused, ServedLists, load_catalog_via_api
from tests.support.isolation import env_of

pytestmark = pytest.mark.integration

END = datetime(2026, 11, 1, tzinfo=UTC)


def end_offsets(settings: Settings, topic: str) -> dict[TopicPartition, int]:
    consumer = make_consumer(settings, group_id=None)
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic)]
        return consumer.end_offsets(partitions)
    finally:
        consumer.close()


def records_since(settings: Settings, start: dict[TopicPartition, int]) -> list:
    """Every record written to the partitions after `start`, up to their current end."""
    end = end_offsets(settings, next(iter(start)).topic)
    consumer = make_consumer(settings, group_id=None, consumer_timeout_ms=2_000)
    try:
        consumer.assign(list(end))
        for partition in end:
            consumer.seek(partition, start.get(partition, 0))
        records, deadline = [], time.monotonic() + 30
        while any(consumer.position(p) < end[p] for p in end) and time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=1_000).values():
                records.extend(r for r in batch if r.offset < end[TopicPartition(r.topic, r.partition)])
        return records
    finally:
        consumer.close()


@pytest.mark.parametrize("workers", [1, 3])
def test_history_lands_exactly_its_events_on_the_users_partitions(stack, settings, unique, workers):
    store = build_store(StoreConfig(seed=3, products=40, categories=4, users=25, user_prefix=f"h{unique}-"))
    expected = list(history_events(store, 4, END))
    before = end_offsets(settings, settings.topics.events)

    tally = send_history(settings, store, 4, end=END, workers=workers)

    records = [r for r in records_since(settings, before) if r.key.startswith(f"h{unique}-")]
    assert tally.events == len(expected) == len(records) > 100
    assert sorted(r.value["event_id"] for r in records) == sorted(e["event_id"] for e in expected)
    # The bulk producer partitions like the platform's producer, so one user's events stay in order.
    partition_count = len(before)
    for record in records:
        assert record.key == record.value["user_id"]
        assert record.partition == (murmur2(record.key.encode()) & 0x7FFFFFFF) % partition_count
    by_user: dict[str, list[str]] = {}
    for record in sorted(records, key=lambda r: (r.partition, r.offset)):
        by_user.setdefault(record.key, []).append(record.value["ts"])
    assert all(stamps == sorted(stamps) for stamps in by_user.values())
    assert tally.first_ts == expected[0]["ts"] and tally.last_ts == expected[-1]["ts"]
    assert len(tally.users) == len({e["user_id"] for e in expected})


def test_catalog_is_published_and_upserted_once_per_product(stack, settings, mongo_db):
    store = build_store(StoreConfig(seed=5, products=30, categories=3, users=1))
    before = end_offsets(settings, settings.topics.catalog)

    assert load_catalog(settings, store) == 30
    assert load_catalog(settings, store) == 30  # idempotent: same documents, same values

    ids = {p.product_id for p in store.products}
    records = [r for r in records_since(settings, before) if r.key in ids]
    assert len(records) == 60
    first = store.products[0]
    published = {r.key: r.value for r in records}[first.product_id]
    assert parse_product(published) == first.catalog_record()
    assert published["attributes"] == {"brand": first.brand} and published["updated_at"].endswith("Z")
    assert mongo_db[PRODUCTS].count_documents({}) == 30
    document = mongo_db[PRODUCTS].find_one({"_id": first.product_id})
    assert parse_product(document) == first.catalog_record()
    assert document["updated_at"].tzinfo is not None


def test_replay_sends_valid_lines_stamped_now_and_reports_bad_ones(stack, settings, unique, tmp_path):
    user = f"r{unique}"
    lines = [
        {
            "event": "ProductView",
            "messageid": f"{unique}-1",
            "userid": user,
            "properties": {"productid": "p00001"},
            "context": {"source": "email"},
            "timestamp": "2019-01-01T00:00:00Z",
        },
        "this is not json",
        {"event": "ProductView", "messageid": f"{unique}-2", "properties": {"productid": "p00002"}},
        {
            "event": "ProductView",
            "messageid": f"{unique}-3",
            "userid": user,
            "properties": {"productid": "p00003"},
            "context": {"source": "search"},
        },
        {"event": "ProductView", "messageid": f"{unique}-4", "userid": user, "properties": {}},
        {"event": "ProductView", "messageid": f"{unique}-5", "userid": user, "properties": {"productid": "p00005"}},
    ]
    path = tmp_path / "clicks.jsonl"
    path.write_text("\n".join(line if isinstance(line, str) else json.dumps(line) for line in lines) + "\n")
    before = end_offsets(settings, settings.topics.events)
    skipped = []
    started = datetime.now(UTC)

    tally = replay_file(settings, path, rate=20, on_invalid=skipped.append)

    assert [(line.number, line.reason) for line in skipped] == [
        (2, "not valid JSON (Expecting value: line 1 column 1 (char 0))"),
        (3, "userid: is required"),
        (5, "properties.productid: is required"),
    ]
    assert tally.events == 3 and tally.invalid == 3
    sent = [r.value for r in records_since(settings, before) if r.key == user]
    assert [e["product_id"] for e in sent] == ["p00001", "p00003", "p00005"]
    assert sent[0]["source"] == "email"
    for event in sent:
        ts = datetime.fromisoformat(event["ts"].replace("Z", "+00:00"))
        assert started - timedelta(seconds=1) <= ts <= datetime.now(UTC)


def test_live_traffic_keeps_its_rate_and_a_rerun_never_repeats_event_ids(stack, settings, unique):
    store = build_store(StoreConfig(seed=9, products=40, categories=4, users=20, user_prefix=f"l{unique}-"))
    before = end_offsets(settings, settings.topics.events)
    started = datetime.now(UTC)

    tally = run_live(settings, store, rate=40, stop=threading.Event(), duration=1.5)

    assert 55 <= tally.events <= 61
    sent = [r.value for r in records_since(settings, before) if r.key.startswith(f"l{unique}-")]
    assert len(sent) == tally.events
    assert all(event["ts"] >= started.strftime("%Y-%m-%dT%H:%M:%S") for event in sent)
    again = run_live(settings, store, rate=40, stop=threading.Event(), duration=0.5)
    assert again.events > 0
    resent = [r.value for r in records_since(settings, before) if r.key.startswith(f"l{unique}-")]
    assert len({e["event_id"] for e in resent}) == len(resent), "a second live run repeated event ids"


def test_cli_loads_a_store_and_summarises_it(stack, settings, mongo_db, unique):
    env = env_of(settings)
    runner = CliRunner()
    sizes = ["--products", "24", "--categories", "3"]
    result = runner.invoke(app, ["simulate", "catalog", *sizes], env=env)
    assert result.exit_code == 0, result.output
    assert "loaded 24 products in 3 categories" in result.output
    result = runner.invoke(
        app,
        [
            "simulate",
            "history",
            "--days",
            "2",
            "--users",
            "10",
            *sizes,
            "--user-prefix",
            f"c{unique}-",
            "--until",
            "2026-11-01T00:00:00Z",
        ],
        env=env,
    )
    assert result.exit_code == 0, result.output
    expected = list(
        history_events(build_store(StoreConfig(products=24, categories=3, users=10, user_prefix=f"c{unique}-")), 2, END)
    )
    assert f"sent {len(expected):,} events" in result.output
    assert "by type: add_to_cart" in result.output and "time span:" in result.output
    assert mongo_db[PRODUCTS].count_documents({}) == 24


def test_cli_replay_reports_bad_lines_and_counts_them(stack, settings, unique, tmp_path):
    path = tmp_path / "clicks.jsonl"
    good = {
        "event": "ProductView",
        "messageid": f"{unique}-a",
        "userid": f"cr{unique}",
        "properties": {"productid": "p00001"},
    }
    path.write_text(json.dumps(good) + "\n{broken\n" + json.dumps(good) + "\n")
    result = CliRunner().invoke(app, ["replay", str(path), "--rate", "50"])
    assert result.exit_code == 0, result.output
    assert "line 2: skipped: not valid JSON" in result.output
    assert "sent 2 events" in result.output and "invalid lines skipped: 1" in result.output


def test_live_command_stops_cleanly_on_sigterm_with_its_summary(stack, unique):
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "recsys_cli.main",
            "simulate",
            "live",
            "--rate",
            "50",
            "--users",
            "20",
            "--products",
            "30",
            "--categories",
            "3",
            "--user-prefix",
            f"s{unique}-",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    watchdog = threading.Timer(90, process.kill)  # a start-up that never says it is sending fails, not hangs
    watchdog.start()
    try:
        # SIGTERM only once it is sending: before that, a slow start-up (imports on a busy machine)
        # has not installed its handler yet, and the signal's default action would kill it.
        for line in iter(process.stderr.readline, ""):
            if "sending live events" in line:
                break
        time.sleep(2)
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=20)
    finally:
        watchdog.cancel()
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, err
    assert "sent " in out and "by type: " in out
    assert "Traceback" not in err


@contextmanager
def api_process(settings: Settings, **env: str) -> Iterator[str]:
    """`recsys api` on the test's stack (its database and topics) until the block ends; its base URL."""
    base = f"http://127.0.0.1:{settings.api_port}"
    api = subprocess.Popen(
        [sys.executable, "-m", "recsys_cli.main", "api"],
        env={**os.environ, **env_of(settings), **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"{base}/health", timeout=2).close()
                break
            except OSError:
                assert api.poll() is None and time.monotonic() < deadline, "the API did not start"
                time.sleep(0.5)
        yield base
    finally:
        api.terminate()
        api.wait(timeout=20)


def test_catalog_via_the_api_lands_in_the_products_collection(stack, settings, mongo_db):
    with api_process(settings, RECSYS_API_KEYS="sim-key") as base:
        store = build_store(StoreConfig(seed=11, products=25, categories=3, users=1))
        with pytest.raises(ApiRefused, match="401"):
            load_catalog_via_api(base, store)
        assert load_catalog_via_api(base, store, api_key="sim-key") == 25
    assert mongo_db[PRODUCTS].count_documents({}) == 25
    document = mongo_db[PRODUCTS].find_one({"_id": store.products[0].product_id})
    assert parse_product(document) == store.products[0].catalog_record()


def test_live_shoppers_click_the_lists_the_api_served_them_and_each_click_names_a_recorded_list(
    stack, settings, mongo_db, unique
):
    store = build_store(StoreConfig(seed=13, products=60, categories=3, users=30, user_prefix=f"r{unique}-"))
    load_catalog(settings, store)
    # Each category's bestsellers are its own products: a shopper's bestsellers fit their tastes.
    computed = datetime.now(UTC)
    mongo_db[BESTSELLERS].insert_many(
        [
            {"_id": scope, "scope": scope, "window_days": 30, "computed_at": computed, "products": ranked}
            for scope, ranked in [
                ("global", [{"product_id": p.product_id, "buyers": 1} for p in store.products[:10]]),
                *(
                    (
                        c.category_id,
                        [
                            {"product_id": p.product_id, "buyers": 1}
                            for p in store.products
                            if p.category_id == c.category_id
                        ][:10],
                    )
                    for c in store.categories
                ),
            ]
        ]
    )
    before = end_offsets(settings, settings.topics.events)
    with api_process(settings, RECSYS_API_KEYS="sim-key") as base:
        served = ServedLists(base, "sim-key")
        tally = run_live(settings, store, rate=100, stop=threading.Event(), duration=6, served=served)
    assert served.failed == 0, served.last_error
    assert sum(served.lists.values()) > 0 and tally.by_type["click"] > 0, served.summary()
    records = [r.value for r in records_since(settings, before)]
    recorded = {e["rec_id"] for e in records if e["type"] == "impression"}
    clicks = [e for e in records if e["type"] == "click"]
    assert len(clicks) == tally.by_type["click"] == sum(served.clicks.values())
    assert {c["rec_id"] for c in clicks} <= recorded, "a click names a list the API never recorded"
    assert "unknown" not in served.clicks
