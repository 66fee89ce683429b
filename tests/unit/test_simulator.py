"""The simulated store, without servers: reproducible, believable, and always valid events."""

from __future__ import annotations

import itertools
import threading
import time
import uuid
from collections import Counter, defaultdict
from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recsys_core.catalog import parse_product
from recsys_core.events import format_ts, parse_event
from recsys_simulator import EventTally, StoreConfig, StoreConfigError, build_store, history_events, live_events
from recsys_simulator.feed import Pacer
from recsys_simulator.replay import read_clickstream
from recsys_simulator.sessions import utc_ts, uuid4_text

END = datetime(2026, 11, 1, tzinfo=UTC)
FIRST_DAY = date(2026, 1, 1)  # RECSYS_EVENTS_START_DATE's default
SMALL = StoreConfig(seed=7, products=120, categories=6, users=300)


@pytest.fixture(scope="module")
def small_history() -> list[dict]:
    return list(history_events(build_store(SMALL), 30, END))


def test_same_seed_gives_identical_catalog_and_events(small_history):
    again = build_store(SMALL)
    assert again.products == build_store(SMALL).products
    assert list(history_events(again, 30, END)) == small_history


def test_different_seed_gives_different_catalog_and_events(small_history):
    other = build_store(StoreConfig(seed=8, products=120, categories=6, users=300))
    assert [p.name for p in other.products] != [p.name for p in build_store(SMALL).products]
    other_events = list(history_events(other, 30, END))
    assert {e["event_id"] for e in other_events}.isdisjoint(e["event_id"] for e in small_history)


def test_catalog_does_not_depend_on_the_number_of_shoppers():
    assert build_store(SMALL).products == build_store(StoreConfig(seed=7, products=120, categories=6, users=5)).products


def test_every_generated_event_is_already_canonical(small_history):
    for event in small_history:
        assert parse_event(event, END, first_day=FIRST_DAY) == event
    store = build_store(SMALL)
    for event in itertools.islice(live_events(store, lambda: END), 2_000):
        assert parse_event(event, END, first_day=FIRST_DAY) == event


def test_history_is_in_time_order_inside_the_requested_days(small_history):
    stamps = [e["ts"] for e in small_history]
    assert stamps == sorted(stamps)
    assert format_ts(END - timedelta(days=30)) <= stamps[0] and stamps[-1] <= format_ts(END)
    assert len({e["event_id"] for e in small_history}) == len(small_history)


def test_top_tenth_of_products_gets_a_large_share_of_views(small_history):
    views = Counter(e["product_id"] for e in small_history if e["type"] == "product_view")
    counts = sorted(views.values(), reverse=True)
    top_share = sum(counts[: SMALL.products // 10]) / sum(counts)
    assert top_share > 0.4, f"top 10% of products got only {top_share:.0%} of views"


def test_most_purchases_fall_in_the_buyers_preferred_categories(small_history):
    store = build_store(SMALL)
    preferred = {s.user_id: set(s.preferred_categories) for s in store.shoppers}
    inside, outside = Counter(), Counter()
    for event in small_history:
        if event["type"] == "purchase":
            for item in event["items"]:
                category = store.product_by_id[item["product_id"]].category_id
                (inside if category in preferred[event["user_id"]] else outside)[event["user_id"]] += 1
    buyers = set(inside) | set(outside)
    assert len(buyers) > 50
    assert sum(inside.values()) / (sum(inside.values()) + sum(outside.values())) > 0.8
    mostly_preferred = [u for u in buyers if inside[u] > outside[u]]
    assert len(mostly_preferred) / len(buyers) > 0.85


def test_each_shopper_prefers_one_to_three_categories():
    counts = Counter(len(s.preferred_categories) for s in build_store(SMALL).shoppers)
    assert set(counts) == {1, 2, 3}


def test_shoppers_come_back_on_several_days(small_history):
    days = defaultdict(set)
    for event in small_history:
        days[event["user_id"]].add(event["ts"][:10])
    returning = [u for u, d in days.items() if len(d) >= 3]
    assert len(returning) / len(days) > 0.5


def test_sessions_lead_to_carts_purchases_and_ratings(small_history):
    types = Counter(e["type"] for e in small_history)
    assert types["product_view"] > types["add_to_cart"] > types["purchase"] > types["rating"] > 0
    store = build_store(SMALL)
    for event in (e for e in small_history if e["type"] == "purchase"):
        assert event["order_id"].startswith("o-")
        for item in event["items"]:
            assert item["price"] == store.product_by_id[item["product_id"]].price


def test_products_of_one_category_share_words_for_content_similarity():
    store = build_store(SMALL)
    words = {
        p.product_id: set((p.name + " " + p.description).lower().replace(",", " ").replace(".", " ").split())
        for p in store.products
    }
    # As TF-IDF does, words found in most products (the description template) carry no weight.
    frequency = Counter(w for ws in words.values() for w in ws)
    words = {pid: {w for w in ws if frequency[w] < len(words) / 2} for pid, ws in words.items()}
    jaccard = lambda a, b: len(words[a] & words[b]) / len(words[a] | words[b])  # noqa: E731
    same, across = [], []
    for a, b in itertools.combinations(store.products[::3], 2):
        (same if a.category_id == b.category_id else across).append(jaccard(a.product_id, b.product_id))
    assert sum(same) / len(same) > 5 * sum(across) / len(across)


def test_products_are_valid_catalog_items():
    for product in build_store(SMALL).products:
        assert parse_product(product.catalog_record()) == product.catalog_record()


def test_sizes_are_configurable_beyond_the_named_categories():
    store = build_store(StoreConfig(seed=1, products=60, categories=20, users=10, user_prefix="x-"))
    assert len(store.categories) == 20 and len(store.products) == 60
    assert all(store.category_products[c.category_id] for c in store.categories)
    assert len({p.name for p in store.products}) == 60
    assert len({c.category_id for c in store.categories}) == 20
    assert all(s.user_id.startswith("x-") for s in store.shoppers)
    assert all(p.price > 0 for p in store.products)


@pytest.mark.parametrize(
    "config, reason",
    [
        (dict(products=3, categories=5), "cannot fill"),
        (dict(categories=0), "at least 1 category"),
        (dict(users=0), "at least 1 user"),
        (dict(user_prefix="a b"), "without spaces"),
    ],
)
def test_impossible_store_sizes_are_refused_with_a_reason(config, reason):
    with pytest.raises(StoreConfigError, match=reason):
        StoreConfig(**config)


@settings(deadline=None)  # a pure property: a scheduler stall on a busy machine is not a failure
@given(st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)))
def test_fast_timestamps_match_the_canonical_format(ts):
    assert utc_ts(ts) == format_ts(ts)


def test_replay_stamps_lines_now_and_says_why_bad_lines_are_skipped():
    now = datetime(2026, 11, 22, 4, 0, tzinfo=UTC)
    lines = [
        '{"event": "ProductView", "messageid": "m-1", "userid": "u1", "properties": {"productid": "p1"},'
        ' "context": {"source": "email"}, "timestamp": "2019-01-01T00:00:00Z"}',
        "{not json",
        "",
        '{"event": "ProductView", "messageid": "m-2", "properties": {"productid": "p2"}}',
        '{"event": "Purchase", "userid": "u1"}',
        "[1, 2]",
    ]
    read = list(read_clickstream(lines, lambda: now, FIRST_DAY))
    assert [line.number for line in read] == [1, 2, 4, 5, 6]
    good = read[0].event
    assert good["ts"] == format_ts(now) and good["user_id"] == "u1" and good["source"] == "email"
    assert good["event_id"] == list(read_clickstream(lines[:1], lambda: now, FIRST_DAY))[0].event["event_id"]
    assert "not valid JSON" in read[1].reason
    assert read[2].reason == "userid: is required"
    assert "ProductView" in read[3].reason
    assert read[4].reason == "an event must be a JSON object"


def test_sent_events_are_stamped_each_strictly_later_than_the_one_before():
    from recsys_simulator.feed import SendTimes

    frozen = datetime(2026, 11, 22, 4, 0, 0, 123_456, tzinfo=UTC)
    stamps = SendTimes(lambda: frozen)
    first, second, third = stamps.next(), stamps.next(), stamps.next()
    assert first == frozen.replace(microsecond=123_000)
    assert (second - first, third - second) == (timedelta(milliseconds=1), timedelta(milliseconds=1))
    clock = iter([frozen, frozen - timedelta(seconds=5), frozen + timedelta(seconds=1)])
    stepping_back = SendTimes(lambda: next(clock))
    assert [format_ts(stepping_back.next()) for _ in range(3)] == [
        "2026-11-22T04:00:00.123Z",
        "2026-11-22T04:00:00.124Z",
        "2026-11-22T04:00:01.123Z",
    ]


def test_a_replay_at_any_rate_keeps_the_files_order_by_time_and_never_stamps_ahead_of_the_clock(monkeypatch, tmp_path):
    import recsys_simulator.feed as feed
    from recsys_core.events import parse_ts
    from recsys_core.settings import Settings

    sent = []

    class Recording:
        def __init__(self, settings):
            pass

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def send(self, topic, key, value):
            sent.append((value, datetime.now(UTC)))

    monkeypatch.setattr(feed, "Publisher", Recording)
    path = tmp_path / "clicks.jsonl"
    path.write_text(
        "".join(
            f'{{"event": "ProductView", "messageid": "m{i}", "userid": "u{i % 3}", '
            f'"properties": {{"productid": "p{i}"}}}}\n'
            for i in range(300)
        )
    )
    tally = feed.replay_file(Settings.from_env({}), path, rate=1e9)
    assert tally.events == 300
    assert [value["product_id"] for value, _ in sent] == [f"p{i}" for i in range(300)]
    stamps = [parse_ts(value["ts"]) for value, _ in sent]
    assert all(later > earlier for earlier, later in itertools.pairwise(stamps))
    assert all(stamp <= at for stamp, (_, at) in zip(stamps, sent, strict=True))


def test_tally_summarises_what_was_sent():
    tally = EventTally()
    tally.add({"type": "product_view", "user_id": "u1", "product_id": "p1", "ts": "2026-01-02T00:00:00.000Z"})
    tally.add(
        {
            "type": "purchase",
            "user_id": "u2",
            "ts": "2026-01-01T00:00:00.000Z",
            "items": [{"product_id": "p2"}, {"product_id": "p1"}],
        }
    )
    text = tally.finish().summary()
    assert "sent 2 events" in text and "product_view 1, purchase 1" in text
    assert "users: 2  products: 2" in text
    assert "2026-01-01T00:00:00.000Z .. 2026-01-02T00:00:00.000Z" in text


def test_pacer_keeps_the_rate_and_stops_at_once():
    stop = threading.Event()
    pacer = Pacer(100, stop)
    started = time.monotonic()
    assert all(pacer.wait() for _ in range(21))
    assert 0.15 <= time.monotonic() - started < 1.0
    timed = Pacer(100, threading.Event(), duration=0.2)
    assert sum(1 for _ in iter(timed.wait, False)) in (20, 21)  # the last slot may round either way
    threading.Timer(0.05, stop.set).start()
    slow = Pacer(0.1, stop)
    slow.wait()
    started = time.monotonic()
    assert slow.wait() is False
    assert time.monotonic() - started < 1


def test_kafka_that_is_down_ends_the_command_with_a_sentence_not_a_traceback(monkeypatch):
    from typer.testing import CliRunner

    from recsys_cli.main import app

    result = CliRunner().invoke(
        app,
        ["simulate", "history", "--days", "1", "--users", "3", "--products", "12"],
        env={"RECSYS_KAFKA_BOOTSTRAP": "127.0.0.1:9"},
    )
    assert result.exit_code == 1
    assert "Kafka at 127.0.0.1:9 is not answering" in result.output
    assert "Traceback" not in result.output


@settings(deadline=None)
@given(st.integers(min_value=0, max_value=2**128 - 1))
def test_fast_event_ids_match_uuid4_text(bits):
    assert uuid4_text(bits) == str(uuid.UUID(int=bits, version=4))


def test_a_subset_of_shoppers_has_exactly_its_events_of_the_full_stream(small_history):
    store = build_store(SMALL)
    some = [0, 5, 17, 42]
    wanted = {store.shoppers[i].user_id for i in some}
    assert list(history_events(store, 30, END, shoppers=some)) == [e for e in small_history if e["user_id"] in wanted]


def test_mongo_that_is_down_ends_the_catalog_load_with_a_sentence():
    from typer.testing import CliRunner

    from recsys_cli.main import app

    result = CliRunner().invoke(
        app, ["simulate", "catalog", "--products", "12"], env={"RECSYS_MONGO_URI": "mongodb://127.0.0.1:9/"}
    )
    assert result.exit_code == 1
    assert "MongoDB at mongodb://127.0.0.1:9/ is not answering" in result.output


def test_a_history_ending_in_the_future_is_refused():
    from typer.testing import CliRunner

    from recsys_cli.main import app

    result = CliRunner().invoke(app, ["simulate", "history", "--until", "2999-01-01T00:00:00Z"])
    assert result.exit_code == 2
    assert "is in the future" in result.output
