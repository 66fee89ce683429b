"""Domain rules of the batch layer, pinned without any server: metrics, split, weights, bestsellers."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest

from recsys_core.bestsellers import OrderLine, category_bestsellers, rank_bestsellers
from recsys_core.events import format_ts
from recsys_core.interactions import PairStrength, decay, interaction_strengths
from recsys_core.metrics import (
    Interaction,
    average_precision_at_k,
    beyond_accuracy,
    evaluate,
    intra_list_diversity,
    ndcg_at_k,
    popularity_ranking,
    precision_at_k,
    recall_at_k,
    recommend_popular,
    split_interactions,
)

AS_OF = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def test_metrics_at_k_match_hand_computed_values():
    recommended, relevant = ["a", "b", "c"], {"a", "c"}
    assert precision_at_k(recommended, relevant, 3) == pytest.approx(2 / 3)
    assert recall_at_k(recommended, relevant, 3) == pytest.approx(1.0)
    assert ndcg_at_k(recommended, relevant, 3) == pytest.approx(1.5 / (1 + 1 / math.log2(3)))
    assert average_precision_at_k(recommended, relevant, 3) == pytest.approx((1 + 2 / 3) / 2)


def test_map_divides_by_k_when_more_items_are_relevant_than_fit():
    assert average_precision_at_k(["x", "a"], {"a", "b", "c"}, 2) == pytest.approx((1 / 2) / 2)


def test_evaluate_averages_over_users_with_held_out_items_and_counts_missing_lists_as_zero():
    scores = evaluate({"u1": ["a"]}, {"u1": {"a"}, "u2": {"b"}, "u3": set()}, k=1)
    assert scores == {"precision": 0.5, "recall": 0.5, "ndcg": 0.5, "map": 0.5}


def test_random_split_is_per_user_75_25_and_reproducible():
    rows = [Interaction(f"u{u}", f"i{i}") for u in range(5) for i in range(8)]
    train, test = split_interactions(rows)
    assert len(train) == 30 and len(test) == 10
    assert {r.user_id for r in test} == {f"u{u}" for u in range(5)}
    assert split_interactions(list(reversed(rows))) == (train, test)
    assert split_interactions(rows, seed=7) != (train, test)


def test_time_split_holds_out_each_users_newest_interactions():
    rows = [Interaction("u", f"i{i}", ts=float(i)) for i in range(4)]
    train, test = split_interactions(rows, how="time")
    assert [r.item_id for r in test] == ["i3"]


def test_popularity_baseline_skips_items_seen_in_training():
    train = [Interaction("u1", "a"), Interaction("u2", "a"), Interaction("u2", "b"), Interaction("u3", "c")]
    ranking = popularity_ranking(train)
    assert ranking == ["a", "b", "c"]
    assert recommend_popular(ranking, {"u2": {"a", "b"}}, ["u2", "u9"], k=2) == {"u2": ["c"], "u9": ["a", "b"]}


def _event(kind, user, product, ts, **fields):
    event = {"type": kind, "user_id": user, "ts": format_ts(ts), **fields}
    if kind == "purchase":
        event["items"] = [{"product_id": product, "quantity": 1, "price": 1.0}]
    else:
        event["product_id"] = product
    return event


def strengths(events, as_of=AS_OF, **options):
    return {pair: found.strength for pair, found in interaction_strengths(events, as_of, **options).items()}


def test_interaction_weights_sum_by_type_and_rating_weighs_its_score():
    day = AS_OF - timedelta(days=1)
    events = [
        _event("product_view", "u", "p", day),
        _event("add_to_cart", "u", "p", day, quantity=1),
        _event("purchase", "u", "p", day, order_id="o"),
        _event("rating", "u", "q", day, score=4.5),
    ]
    assert strengths(events) == {("u", "p"): 9.0, ("u", "q"): 4.5}
    assert interaction_strengths(events, AS_OF)[("u", "p")] == PairStrength(9.0, day, 3)


def test_history_delete_removes_the_pair_but_later_events_count_again():
    t0 = AS_OF - timedelta(days=3)
    events = [
        _event("product_view", "u", "p", t0),
        _event("history_delete", "u", "p", t0 + timedelta(hours=1)),
        _event("product_view", "u", "q", t0),
    ]
    assert strengths(events) == {("u", "q"): 1.0}
    events.append(_event("product_view", "u", "p", t0 + timedelta(hours=2)))
    assert strengths(events)[("u", "p")] == 1.0


def test_decay_ages_events_against_as_of_and_later_events_do_not_count_yet():
    events = [
        _event("product_view", "u", "p", AS_OF - timedelta(days=7)),
        _event("product_view", "u", "p", AS_OF),
        _event("product_view", "u", "q", AS_OF + timedelta(seconds=1)),
        _event("history_delete", "u", "p", AS_OF + timedelta(seconds=1)),
    ]
    assert strengths(events, half_life_days=7) == {("u", "p"): 1.5}
    later = strengths(events, AS_OF + timedelta(days=7), half_life_days=7)  # the delete counts now
    assert later == {("u", "q"): pytest.approx(0.5, rel=1e-5)}


def test_decay_halves_weight_every_half_life():
    assert decay(14, 7) == pytest.approx(0.25)
    assert decay(14, None) == 1.0


def test_bestsellers_count_distinct_buyers_inside_the_window_only():
    start = AS_OF - timedelta(days=30)
    lines = [
        OrderLine("u1", "p1", start + timedelta(seconds=1), "c1"),
        OrderLine("u2", "p2", start - timedelta(seconds=1), "c1"),  # one second outside
        OrderLine("u3", "p2", AS_OF, "c1"),
        OrderLine("u3", "p2", AS_OF - timedelta(days=1), "c1"),  # same buyer twice counts once
        OrderLine("u4", "p3", AS_OF + timedelta(seconds=1), "c2"),  # after the window's end
        OrderLine("u1", "p0", AS_OF, None),
    ]
    assert rank_bestsellers(lines, AS_OF, 30) == [
        {"product_id": "p0", "buyers": 1},
        {"product_id": "p1", "buyers": 1},
        {"product_id": "p2", "buyers": 1},
    ]
    assert category_bestsellers(lines, AS_OF, 30) == {  # c2 sold only after the window: no list
        "c1": [{"product_id": "p1", "buyers": 1}, {"product_id": "p2", "buyers": 1}]
    }


def test_interaction_files_merge_repeated_pairs_and_read_recbole_headers():
    from recsys_core.datasets import BadInteractionFile, parse_csv, parse_movielens

    rows = parse_csv("user_id,item_id,rating,timestamp\nu,i,4,10\nu,i,1,20\nv,i,,5\n")
    assert sorted(rows, key=lambda r: r.user_id) == [Interaction("u", "i", 5.0, 20.0), Interaction("v", "i", 1.0, 5.0)]
    inter = "user_id:token\titem_id:token\trating:float\ttimestamp:float\n196\t242\t3\t881250949\n"
    assert parse_movielens(inter) == [Interaction("196", "242", 3.0, 881250949.0)]
    with pytest.raises(BadInteractionFile, match="line 2: 'x' is not a number"):
        parse_csv("user_id,item_id,weight\nu,i,x\n")


def test_records_the_lake_cannot_place_are_quarantined_on_a_day_it_has_with_the_reason():
    import json
    from collections import namedtuple
    from datetime import date

    from recsys_assets.records import validate_records

    row = namedtuple("Row", "topic partition offset value kafka_ts_ms")
    arrival = int(AS_OF.timestamp() * 1000)
    view = {"type": "product_view", "user_id": "u", "product_id": "p"}
    raws = [
        {**view, "ts": "2025-12-31T23:59:59Z"},
        {**view, "ts": "9999-12-31T23:59:59Z"},
        {**view, "ts": "0001-01-01T00:00:00+01:00"},
        {**view, "ts": "2026-11-20T08:00:00Z", "type": "teleport"},
    ]
    records = list(
        validate_records(
            [row("events", 0, i, json.dumps(raw), arrival) for i, raw in enumerate(raws)], date(2026, 1, 1)
        )
    )
    assert [r[0] for r in records] == [False] * 4
    days = [datetime.fromtimestamp(r[1] / 1000, UTC).date().isoformat() for r in records]
    # Placed by arrival when the event's own time has no day in the lake; by that time otherwise.
    assert days == ["2026-11-22", "2026-11-22", "2026-11-22", "2026-11-20"]
    reasons = [r[6] for r in records]
    assert reasons[0].startswith("ts: before RECSYS_EVENTS_START_DATE (2026-01-01)")
    assert reasons[1] == "ts: is more than 5 minutes in the future"
    assert reasons[2].endswith("is outside the range of dates")
    early = list(validate_records([row("events", 0, 9, json.dumps(raws[0]), 0)], date(2026, 1, 1)))[0]
    assert datetime.fromtimestamp(early[1] / 1000, UTC).date() == date(2026, 1, 1)  # not before the lake's first day


def test_beyond_accuracy_metrics_match_hand_computed_values():
    lists = {"u1": ["a", "b"], "u2": ["a", "c", "d"]}
    popularity = {"a": 1.0, "b": 0.5, "c": 0.25}
    category_of = {"a": "x", "b": "x", "c": "y", "d": "z"}
    found = beyond_accuracy(lists, popularity, category_of, catalog_size=8)
    assert found["coverage"] == pytest.approx(4 / 8)
    assert found["avg_popularity"] == pytest.approx(((1 + 0.5) / 2 + (1 + 0.25 + 0) / 3) / 2)
    assert found["diversity"] == pytest.approx((0 + 1) / 2)  # u1's pair shares x; u2's three differ


def test_diversity_leaves_out_lists_without_two_categorised_products():
    assert intra_list_diversity(["a", "b"], {"a": "x"}) is None
    assert beyond_accuracy({"u": ["a"]}, {}, {"a": "x"}, 1)["diversity"] is None
    assert intra_list_diversity(["a", "b", "c"], {"a": "x", "b": "x", "c": "y"}) == pytest.approx(2 / 3)
