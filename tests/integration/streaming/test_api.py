"""End to end: events posted to the API reach the shopper's history and recommendations through the stream."""

from __future__ import annotations

import dataclasses
import time

import pytest
from litestar.testing import TestClient

from recsys_api.app import create_app
from recsys_io.mongo import HISTORY, RECOMMENDATIONS
from streaming.batch import BatchProcessor
from streaming.job import start_query, stop_after_batch
from tests.support.stream import BOOKS, SHOES, product_ids, wait_for, write_catalog, write_model

pytestmark = pytest.mark.integration


def test_posted_view_shows_in_history_and_recommendations_within_seconds_and_api_delete_sticks(
    spark, settings, mongo_db, unique
):
    settings = dataclasses.replace(settings, stream_trigger_seconds=0.5, min_list_size=1)
    user = f"api-{unique}"
    write_model(spark, settings, mongo_db, f"v1-{unique}", {**SHOES, **BOOKS}, {})
    write_catalog(mongo_db, {p: "shoes" for p in SHOES}, {"s1": [("s3", 0.8)], "s2": [("s4", 0.8)]}, {})
    processor = BatchProcessor(settings, spark)
    query = start_query(spark, settings, processor)
    try:
        with TestClient(create_app(settings)) as api:
            wait_for(lambda: processor.batches > 0, 90, "the stream to catch up with earlier tests")
            answer = api.post("/v1/events", json={"type": "product_view", "user_id": user, "product_id": "s1"})
            assert answer.status_code == 202, answer.text
            accepted = time.monotonic()
            wait_for(
                lambda: "s3" in product_ids(mongo_db[RECOMMENDATIONS].find_one({"_id": user})),
                30,
                "recommendations to reflect the view",
            )
            assert time.monotonic() - accepted < 15
            assert product_ids(mongo_db[HISTORY].find_one({"_id": user})) == ["s1"]
            assert api.get(f"/v1/users/{user}/history").json()["products"][0] == "s1"

            api.post("/v1/events", json={"type": "product_view", "user_id": user, "product_id": "s2"})
            wait_for(
                lambda: product_ids(mongo_db[HISTORY].find_one({"_id": user})) == ["s2", "s1"], 30, "the second view"
            )
            before = mongo_db[RECOMMENDATIONS].find_one({"_id": user})["last_event_ts"]
            assert api.delete(f"/v1/users/{user}/history/s1").status_code == 204
            # The stream applies the history_delete event too, and must not bring the view back.
            wait_for(
                lambda: mongo_db[RECOMMENDATIONS].find_one({"_id": user})["last_event_ts"] > before,
                30,
                "the stream to apply the delete event",
            )
            assert product_ids(mongo_db[HISTORY].find_one({"_id": user})) == ["s2"]
    finally:
        stop_after_batch(query, processor)
        processor.close()
