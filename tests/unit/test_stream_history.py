"""The browsing-history rule (recsys_core.history): pure, no server."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from recsys_core.documents import HISTORY_MAX_ITEMS
from recsys_core.events import format_ts
from recsys_core.history import history_after

T0 = datetime(2026, 11, 22, 4, 0, tzinfo=UTC)


def at(seconds: float) -> str:
    return format_ts(T0 + timedelta(seconds=seconds))


def view(product_id: str, seconds: float) -> dict:
    return {"type": "product_view", "user_id": "u1", "product_id": product_id, "ts": at(seconds)}


def delete(product_id: str, seconds: float) -> dict:
    return {"type": "history_delete", "user_id": "u1", "product_id": product_id, "ts": at(seconds)}


def test_history_is_distinct_products_newest_view_first():
    history = history_after(None, [view("a", 1), view("b", 2), view("a", 3), view("c", 0)])
    assert history.product_ids() == ["a", "b", "c"]
    assert history.items()[0][1] == T0 + timedelta(seconds=3)


def test_late_event_lands_at_its_event_time_not_arrival_order():
    stored = history_after(None, [view("a", 10), view("b", 20)]).to_fields()
    history = history_after(stored, [view("late", 15)])
    assert history.product_ids() == ["b", "late", "a"]


def test_history_keeps_the_fifty_most_recent_products():
    events = [view(f"p{i:03d}", i) for i in range(HISTORY_MAX_ITEMS + 10)]
    history = history_after(None, events)
    assert len(history.product_ids()) == HISTORY_MAX_ITEMS
    assert history.product_ids()[0] == f"p{HISTORY_MAX_ITEMS + 9:03d}"
    assert "p009" not in history.product_ids()


def test_delete_removes_product_and_keeps_older_views_out():
    history = history_after(None, [view("a", 1), view("b", 2), delete("a", 5), view("a", 4)])
    assert history.product_ids() == ["b"]


def test_view_after_delete_brings_product_back():
    history = history_after(None, [view("a", 1), delete("a", 5), view("a", 6)])
    assert history.product_ids() == ["a"]


def test_delete_arriving_before_an_older_view_still_wins():
    stored = history_after(None, [delete("a", 5)]).to_fields()
    assert history_after(stored, [view("a", 3)]).product_ids() == []


def test_purchases_are_remembered_for_recommendations():
    purchase = {
        "type": "purchase",
        "user_id": "u1",
        "ts": at(1),
        "order_id": "o1",
        "items": [{"product_id": "x", "quantity": 1, "price": 2.0}],
    }
    assert history_after(None, [purchase]).purchased == {"x"}


def test_replaying_events_changes_nothing():
    events = [view("a", 1), view("b", 2), delete("a", 3), view("c", 4)]
    once = history_after(None, events).to_fields()
    twice = history_after(once, events).to_fields()
    assert once == twice


def test_any_order_of_the_same_events_gives_the_same_history():
    rng = random.Random(7)
    events = [view(f"p{rng.randrange(45)}", rng.randrange(1000)) for _ in range(300)]
    events += [delete(f"p{rng.randrange(45)}", rng.randrange(1000)) for _ in range(30)]
    expected = history_after(None, events).to_fields()
    for _ in range(5):
        rng.shuffle(events)
        # Applied in three separate batches, as the stream would.
        document = None
        for start in range(0, len(events), 110):
            document = history_after(document, events[start : start + 110]).to_fields()
        assert (document["product_ids"], document["viewed_at"]) == (expected["product_ids"], expected["viewed_at"])


def test_product_ids_that_are_not_valid_document_keys_survive_a_round_trip():
    fields = history_after(None, [view("a.b", 1), delete("a.b", 2), delete("$x", 3)]).to_fields()
    assert all("." not in key and not key.startswith("$") for key in fields["deleted"])
    assert set(history_after(fields, []).deleted) == {"a.b", "$x"}


def test_a_document_in_the_earlier_shape_reads_the_same_and_is_rewritten_in_the_new_one():
    fields = history_after(None, [view("a", 1), view("b", 2), delete("c", 3)]).to_fields()
    earlier = {
        "items": [{"product_id": p, "ts": ts} for p, ts in zip(fields["product_ids"], fields["viewed_at"])],
        "deleted": fields["deleted"],
        "purchased": fields["purchased"],
    }
    assert history_after(earlier, []).to_fields() == fields
    assert "items" not in fields and len(fields["product_ids"]) == len(fields["viewed_at"]) == 2


def arrived(event: dict, seq: int) -> dict:
    """The event as the streaming job sees it: with its record's offset in the shopper's partition."""
    return {**event, "seq": seq}


def test_views_of_one_millisecond_are_in_arrival_order_newest_first():
    history = history_after(None, [arrived(view("b", 1), 7), arrived(view("a", 1), 9), arrived(view("c", 1), 8)])
    assert history.product_ids() == ["a", "c", "b"]
    # Without arrival positions there is nothing but the product id to tell them apart.
    assert history_after(None, [view("b", 1), view("a", 1), view("c", 1)]).product_ids() == ["a", "b", "c"]


def test_the_ten_last_viewed_of_forty_views_in_one_millisecond_come_first():
    events = [arrived(view(f"p{i:02d}", 1), 100 + i) for i in range(40)]
    random.Random(3).shuffle(events)  # the order a batch hands them over in does not matter
    history = history_after(None, events)
    assert history.product_ids()[:10] == [f"p{i:02d}" for i in range(39, 29, -1)]
    trimmed = history_after(None, [arrived(view(f"p{i:02d}", 1), i) for i in range(HISTORY_MAX_ITEMS + 10)])
    assert trimmed.product_ids() == [f"p{i:02d}" for i in range(HISTORY_MAX_ITEMS + 9, 9, -1)]


def test_arrival_order_survives_the_stored_document_and_replays_and_batching():
    events = [arrived(view(f"p{i % 7}", i % 3), i) for i in range(30)] + [arrived(delete("p2", 2), 31)]
    once = history_after(None, events).to_fields()
    assert history_after(once, []).to_fields() == once
    assert history_after(once, events).to_fields() == once  # a micro-batch applied again
    document = None
    for start in range(0, len(events), 4):
        document = history_after(document, events[start : start + 4]).to_fields()
    assert document == once


def test_a_view_of_the_deletes_millisecond_counts_as_newer_only_if_it_arrived_after_it():
    before, deletion, after = arrived(view("a", 5), 1), arrived(delete("a", 5), 2), arrived(view("b", 5), 3)
    assert history_after(None, [deletion, before]).product_ids() == []
    assert history_after(None, [deletion, before, {**after, "product_id": "a"}]).product_ids() == ["a"]
    stored = history_after(None, [deletion]).to_fields()  # the delete's position is kept
    assert history_after(stored, [{**after, "product_id": "a"}]).product_ids() == ["a"]


def test_a_delete_without_an_arrival_position_keeps_its_whole_millisecond_out():
    """The API's own delete has no offset: it hides every view of its millisecond, in any batch."""
    stored = history_after(None, [arrived(view("a", 5), 10)]).to_fields()
    after_api = history_after(stored, [delete("a", 5)])
    assert after_api.product_ids() == []
    # The same delete reaching the stream later, with its offset, changes nothing.
    assert (
        history_after(after_api.to_fields(), [arrived(delete("a", 5), 11), arrived(view("a", 5), 12)]).product_ids()
        == []
    )


def test_a_document_written_before_arrival_positions_reads_and_sorts_before_them():
    earlier = {"product_ids": ["b", "a"], "viewed_at": [T0 + timedelta(seconds=1)] * 2, "deleted": {}, "purchased": []}
    history = history_after(earlier, [arrived(view("c", 1), 4)])
    assert history.product_ids() == ["c", "a", "b"]
    assert history.to_fields()["viewed_seq"] == [4, -1, -1]
    # Views replaced by a writer that does not know about positions: the stale ones are not used.
    replaced = {**history.to_fields(), "product_ids": ["x"], "viewed_at": [T0]}
    assert history_after(replaced, []).to_fields()["viewed_seq"] == [-1]
