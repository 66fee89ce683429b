"""The speed layer in-process against the real Kafka, Spark and FerretDB of the test stack."""

from __future__ import annotations

import dataclasses
import shutil
import time
from datetime import timedelta

import pytest

from recsys_core.erasure import user_erasure_event, user_hash
from recsys_io.mongo import ERASURES, HISTORY, RECOMMENDATIONS
from streaming.batch import BatchProcessor
from streaming.job import checkpoint_dir, start_query, stop_after_batch
from tests.support.api import api_client
from tests.support.isolation import truncate
from tests.support.stream import (
    BOOKS,
    SHOES,
    T0,
    dead_letters,
    delete,
    produce,
    product_ids,
    purchase,
    stable_fields,
    view,
    wait_for,
    write_catalog,
    write_model,
)

pytestmark = pytest.mark.integration

CATEGORIES = {**{p: "shoes" for p in SHOES}, **{p: "books" for p in BOOKS}}


def run_once(spark, settings) -> BatchProcessor:
    processor = BatchProcessor(settings, spark)
    try:
        start_query(spark, settings, processor, once=True).awaitTermination()
    finally:
        processor.close()
    return processor


def test_view_reaches_history_and_recommendations_within_seconds_and_new_model_is_used_next_batch(
    spark, settings, mongo_db, unique
):
    settings = dataclasses.replace(settings, stream_trigger_seconds=0.5)
    user = f"u-{unique}"
    write_model(spark, settings, mongo_db, f"v1-{unique}", {**SHOES, **BOOKS}, {user: [0.0, 1.0, 0.0]})
    write_catalog(mongo_db, CATEGORIES, {"s1": [("s2", 0.9)]}, {})
    processor = BatchProcessor(settings, spark)
    query = start_query(spark, settings, processor)
    try:
        wait_for(lambda: processor.batches > 0, 90, "the first batch")  # the backlog of earlier tests
        sent = time.monotonic()
        produce(settings, [view(user, "s1", 10)])
        recommendations = wait_for(lambda: mongo_db[RECOMMENDATIONS].find_one({"_id": user}), 30, "recommendations")
        assert time.monotonic() - sent < 20  # generous: the 2 cores are shared with other Spark jobs
        assert product_ids(mongo_db[HISTORY].find_one({"_id": user})) == ["s1"]
        assert recommendations["strategy"] == "realtime"
        assert recommendations["model_version"] == f"v1-{unique}"
        assert product_ids(recommendations)[0] == "s2"  # neighbour of the view, despite a books-only vector
        assert "s1" not in product_ids(recommendations)

        # A newer promoted model with a product the first one did not know.
        write_model(
            spark,
            settings,
            mongo_db,
            f"v2-{unique}",
            {**SHOES, **BOOKS, "new1": [0.0, 2.0, 0.0]},
            {user: [0.0, 1.0, 0.0]},
        )
        produce(settings, [view(user, "b1", 20)])
        recommendations = wait_for(
            lambda: mongo_db[RECOMMENDATIONS].find_one({"_id": user, "model_version": f"v2-{unique}"}),
            30,
            "the new model's recommendations",
        )
        assert "new1" in product_ids(recommendations)
    finally:
        stop_after_batch(query, processor)
        processor.close()


def test_bad_records_go_to_the_dlq_with_reasons_while_good_ones_in_the_same_batch_apply(
    spark, settings, mongo_db, unique
):
    user = f"u-{unique}"
    produce(
        settings,
        [
            view(user, "s1", 1),
            f"not json {unique}".encode(),
            b"\xff\xfe" + unique.encode(),
            {"type": "product_view", "user_id": user, "ts": "yesterday", "note": unique},
            view(user, "s2", 2),
            # Times the lake has no day for: before RECSYS_EVENTS_START_DATE, and no UTC instant at all.
            {**view(user, "old", 3), "ts": "2025-12-31T23:59:59Z", "note": unique},
            {**view(user, "overflow", 4), "ts": "0001-01-01T00:00:00+01:00", "note": unique},
        ],
        key=user,
    )
    processor = run_once(spark, settings)
    assert product_ids(mongo_db[HISTORY].find_one({"_id": user})) == ["s2", "s1"]
    letters = wait_for(
        lambda: (found := dead_letters(settings, unique)) and len(found) >= 5 and found, 30, "five dead letters"
    )
    reasons = sorted(letter["reason"] for letter in letters)
    assert reasons == ["invalid event"] * 3 + ["not JSON", "not JSON"]
    fields = sorted(
        sorted(e["field"] for e in letter["errors"]) for letter in letters if letter["reason"] == "invalid event"
    )
    assert fields == [["product_id", "ts"], ["ts"], ["ts"]]
    ts_reasons = [e["reason"] for letter in letters for e in letter["errors"] if e["field"] == "ts"]
    assert any(r.startswith("before RECSYS_EVENTS_START_DATE (2026-01-01)") for r in ts_reasons)
    assert any(r.endswith("is outside the range of dates") for r in ts_reasons)
    invalid = next(letter for letter in letters if letter["reason"] == "invalid event")
    assert invalid["source"]["topic"] == settings.topics.events and invalid["source"]["offset"] >= 0
    assert next(letter for letter in letters if letter["encoding"] == "base64")
    assert processor.dead_letters >= 5


def test_out_of_order_views_and_history_delete_land_by_event_time(spark, settings, mongo_db, unique):
    user = f"u-{unique}"
    produce(
        settings,
        [
            view(user, "a", 10),
            view(user, "b", 30),
            view(user, "c", 20),
            delete(user, "b", 40),
            view(user, "b", 35),
            view(user, "d", 5),
            purchase(user, "s3", 50),
        ],
    )
    run_once(spark, settings)
    history = mongo_db[HISTORY].find_one({"_id": user})
    assert product_ids(history) == ["c", "a", "d"]
    assert history["purchased"] == ["s3"]
    recommendations = mongo_db[RECOMMENDATIONS].find_one({"_id": user})
    assert recommendations["last_event_ts"] == T0 + timedelta(seconds=50)


def test_views_of_one_millisecond_land_in_arrival_order_and_are_served_so_also_after_a_replay(
    spark, settings, mongo_db, unique
):
    few, many = f"few-{unique}", f"many-{unique}"
    # Product-id order (the tie-break without arrival positions) differs from arrival order in both.
    produce(settings, [view(few, p, 7) for p in ("c", "a", "d", "b")] + [view(many, f"p{i:02d}", 7) for i in range(40)])
    run_once(spark, settings)
    assert product_ids(mongo_db[HISTORY].find_one({"_id": few})) == ["b", "d", "a", "c"]
    last_ten = [f"p{i:02d}" for i in range(39, 29, -1)]
    assert product_ids(mongo_db[HISTORY].find_one({"_id": many}))[:10] == last_ten
    with api_client(settings) as client:
        assert client.get(f"/v1/users/{many}/history", params={"limit": 10}).json()["products"] == last_ten
    before = stable_fields(mongo_db[HISTORY].find_one({"_id": many}))
    shutil.rmtree(checkpoint_dir(settings))  # every batch applied again onto the stored documents
    run_once(spark, settings)
    assert stable_fields(mongo_db[HISTORY].find_one({"_id": many})) == before


def test_without_a_model_browsed_category_bestsellers_fill_and_bought_products_stay_out(
    spark, settings, mongo_db, unique
):
    user = f"u-{unique}"
    write_catalog(
        mongo_db, CATEGORIES, {}, {"shoes": [("s4", 9), ("s3", 5), ("s2", 1)], "global": [("b4", 50), ("s4", 9)]}
    )
    produce(settings, [view(user, "s1", 1), purchase(user, "s3", 2)])
    run_once(spark, settings)
    recommendations = mongo_db[RECOMMENDATIONS].find_one({"_id": user})
    assert recommendations["model_version"] is None
    assert product_ids(recommendations) == ["s4", "s2", "b4"]


def test_replaying_every_batch_from_scratch_changes_no_document(spark, settings, mongo_db, unique):
    user = f"u-{unique}"
    write_model(spark, settings, mongo_db, f"v1-{unique}", {**SHOES, **BOOKS}, {})
    produce(settings, [view(user, f"s{i % 4 + 1}", i) for i in range(12)] + [delete(user, "s2", 100)])
    run_once(spark, settings)
    before = {
        c: [stable_fields(d) for d in mongo_db[c].find({}, sort=[("_id", 1)])] for c in (HISTORY, RECOMMENDATIONS)
    }
    shutil.rmtree(checkpoint_dir(settings))  # forget the offsets: every batch is applied again
    run_once(spark, settings)
    after = {c: [stable_fields(d) for d in mongo_db[c].find({}, sort=[("_id", 1)])] for c in (HISTORY, RECOMMENDATIONS)}
    assert after == before
    assert product_ids(mongo_db[HISTORY].find_one({"_id": user})) == ["s4", "s3", "s1"]


def test_after_the_topic_is_truncated_the_job_moves_on_and_a_fresh_job_rebuilds_from_what_is_left(
    spark, settings, mongo_db, unique
):
    """Kafka is a buffer: once retention took its records, the speed layer needs none of them."""
    kept, new = f"kept-{unique}", f"new-{unique}"
    write_model(spark, settings, mongo_db, f"v1-{unique}", {**SHOES, **BOOKS}, {})
    produce(settings, [view(kept, "s1", 1), view(kept, "s2", 2)])
    run_once(spark, settings)
    truncate(settings, settings.topics.events)

    produce(settings, [view(kept, "s3", 3), view(new, "b1", 4)])
    run_once(spark, settings)  # its checkpoint is past the deleted records: it just goes on
    assert product_ids(mongo_db[HISTORY].find_one({"_id": kept})) == ["s3", "s2", "s1"]

    # A new job (no checkpoint, `earliest`) on an empty store serves what the topic still holds;
    # the batch layer rebuilds the rest from the lake (tests/integration/batch/test_ingest.py).
    shutil.rmtree(checkpoint_dir(settings))
    for collection in (HISTORY, RECOMMENDATIONS):
        mongo_db[collection].delete_many({})
    run_once(spark, settings)
    assert product_ids(mongo_db[HISTORY].find_one({"_id": kept})) == ["s3"]
    assert product_ids(mongo_db[HISTORY].find_one({"_id": new})) == ["b1"]
    assert mongo_db[RECOMMENDATIONS].find_one({"_id": new}) is not None


@pytest.mark.parametrize("on_writes_thread", [False, True], ids=["inline", "writes-thread"])
def test_a_history_changed_by_someone_else_between_batches_is_read_again_not_overwritten(
    settings, mongo_db, on_writes_thread
):
    """The job starts a shopper's next batch from the history it wrote last, unless the stored
    document moved on (the API deleting from it): then the guard fails and it merges onto the
    stored one. On the writes thread, the histories returned are final once their write is done."""
    from datetime import UTC, datetime

    from recsys_core.events import parse_event
    from streaming.store import Tokens, Writes, WrittenDocuments, update_histories

    tokens, known = Tokens(), WrittenDocuments(10)
    writes = Writes() if on_writes_thread else None

    def apply(event: dict) -> dict:
        parsed = parse_event(event, first_day=settings.events_first_day, allow_internal=True)
        histories, written = update_histories(mongo_db, {"u1": [parsed]}, tokens, known, writes)
        if written is not None:
            written.result()
        return histories

    try:
        apply(view("u1", "a", 1))
        assert known.get_many(["u1"])  # remembered: the next batch need not read it
        mongo_db[HISTORY].update_one(
            {"_id": "u1"},
            {"$set": {"product_ids": [], "viewed_at": [], "updated_at": datetime(2000, 1, 1, tzinfo=UTC)}},
        )
        histories = apply(view("u1", "b", 2))
    finally:
        if writes is not None:
            writes.close()
    assert product_ids(mongo_db[HISTORY].find_one({"_id": "u1"})) == ["b"]
    assert product_ids(known.get_many(["u1"])["u1"]) == ["b"]
    assert histories["u1"].product_ids() == ["b"]


def test_writes_run_in_order_and_wait_raises_the_first_failure_after_all_finished():
    from streaming.store import Writes

    writes, done = Writes(), []

    def failing():
        raise ConnectionError("store down")

    try:
        for write in (lambda: done.append(1), failing, lambda: done.append(2)):
            writes.submit(write)
        with pytest.raises(ConnectionError, match="store down"):
            writes.wait()
        assert done == [1, 2]
        writes.submit(lambda: done.append(3))
        assert writes.wait() >= 0 and done == [1, 2, 3]
    finally:
        writes.close()


def test_wait_all_waits_for_every_collections_writes_before_raising():
    import threading

    from streaming.store import Writes, wait_all

    histories, recommendations, done = Writes(), Writes(), []
    release = threading.Event()

    def failing():
        raise ConnectionError("store down")

    def slow():
        release.wait(5)
        done.append("recommendations")

    try:
        histories.submit(failing)
        recommendations.submit(slow)
        threading.Timer(0.2, release.set).start()
        with pytest.raises(ConnectionError, match="store down"):
            wait_all([histories, recommendations])
        assert done == ["recommendations"]
        assert wait_all([histories, recommendations]) >= 0  # nothing left over for the next batch
    finally:
        histories.close()
        recommendations.close()


def test_categories_and_neighbours_are_kept_for_their_ttl_and_neighbours_go_with_a_new_model(mongo_db, unique):
    from recsys_io.mongo import PRODUCTS, SIMILAR_ITEMS
    from streaming.store import ReferenceData

    now = [0.0]
    reference = ReferenceData(ttl=60, clock=lambda: now[0])
    known, missing = f"p-{unique}", f"missing-{unique}"
    mongo_db[PRODUCTS].insert_one({"_id": known, "product_id": known, "category_id": "shoes"})
    mongo_db[SIMILAR_ITEMS].insert_one({"_id": known, "product_id": known, "neighbours": [{"product_id": "x"}]})
    assert reference.lookup(mongo_db[PRODUCTS], "category_id", {known, missing}) == {known: "shoes"}
    mongo_db[PRODUCTS].update_one({"_id": known}, {"$set": {"category_id": "books"}})
    mongo_db[PRODUCTS].insert_one({"_id": missing, "product_id": missing, "category_id": "books"})
    now[0] = 59
    assert reference.lookup(mongo_db[PRODUCTS], "category_id", {known, missing}) == {known: "shoes"}
    now[0] = 61
    assert reference.lookup(mongo_db[PRODUCTS], "category_id", {known, missing}) == {known: "books", missing: "books"}
    reference.model_changed("v1")
    assert reference.lookup(mongo_db[SIMILAR_ITEMS], "neighbours", {known}) == {known: [{"product_id": "x"}]}
    mongo_db[SIMILAR_ITEMS].update_one({"_id": known}, {"$set": {"neighbours": [{"product_id": "y"}]}})
    reference.model_changed("v1")
    assert reference.lookup(mongo_db[SIMILAR_ITEMS], "neighbours", {known}) == {known: [{"product_id": "x"}]}
    reference.model_changed("v2")
    assert reference.lookup(mongo_db[SIMILAR_ITEMS], "neighbours", {known}) == {known: [{"product_id": "y"}]}


def test_shoppers_are_written_in_groups_oldest_events_first(settings, mongo_db, unique, monkeypatch):
    """A task writes its shoppers group by group, those whose events waited longest first; all land."""
    import streaming.shoppers as shoppers
    from recsys_core.events import parse_event
    from recsys_io.mongo import mongo_client

    write_catalog(mongo_db, CATEGORIES, {"s1": [("s2", 0.9)]}, {})
    monkeypatch.setattr(shoppers, "WRITE_GROUP", 2)
    groups = []

    def recording(db, events_by_user, *args, **kwargs):
        groups.append(sorted(events_by_user))
        return update_histories(db, events_by_user, *args, **kwargs)

    update_histories = shoppers.update_histories
    monkeypatch.setattr(shoppers, "update_histories", recording)
    # u0's events are the oldest, u4's the newest; u2 also has a late-arriving old event.
    users = [f"u{i}-{unique}" for i in range(5)]
    raw = [view(users[i], "s1", 10 + 10 * i) for i in range(5)] + [view(users[2], "b1", 5)]
    events = [parse_event(event, first_day=settings.events_first_day, allow_internal=True) for event in raw]
    client = mongo_client(settings)
    worker = shoppers.ShopperWorker(settings, client)
    try:
        worker.apply(events, None, {})
    finally:
        worker.close()
        client.close()
    assert groups == [sorted([users[2], users[0]]), sorted([users[1], users[3]]), [users[4]]]
    for i, user in enumerate(users):
        assert mongo_db[HISTORY].find_one({"_id": user}) is not None
        recommendations = mongo_db[RECOMMENDATIONS].find_one({"_id": user})
        assert recommendations["last_event_ts"] == T0 + timedelta(seconds=10 + 10 * i)


def test_an_erased_shoppers_older_event_arriving_after_the_erasure_does_not_bring_them_back(
    spark, settings, mongo_db, unique
):
    gone, kept = f"gone-{unique}", f"kept-{unique}"
    produce(settings, [view(gone, "s1", 10), view(kept, "s1", 10)])
    run_once(spark, settings)
    assert mongo_db[HISTORY].find_one({"_id": gone}) and mongo_db[RECOMMENDATIONS].find_one({"_id": gone})
    erasure = user_erasure_event(gone, first_day=settings.events_first_day)
    produce(settings, [erasure, view(gone, "s2", 20), view(kept, "s2", 20)])
    processor = run_once(spark, settings)
    assert mongo_db[HISTORY].find_one({"_id": gone}) is None
    assert mongo_db[RECOMMENDATIONS].find_one({"_id": gone}) is None
    assert [d["_id"] for d in mongo_db[ERASURES].find()] == [user_hash(gone)]
    assert processor.last_batch["erased"] == 2  # the erasure itself and the late view
    assert product_ids(mongo_db[HISTORY].find_one({"_id": kept})) == ["s2", "s1"]
