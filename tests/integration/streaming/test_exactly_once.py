"""`recsys stream` as its own process: SIGKILL mid-stream, restart, and nothing is lost or applied twice."""

from __future__ import annotations

import dataclasses
import os
import random
import signal
import subprocess
import time
from pathlib import Path

import pytest

from recsys_io.mongo import HISTORY, MODELS, RECOMMENDATIONS, mongo_client
from streaming.batch import BatchProcessor
from streaming.job import start_query
from tests.support.isolation import recsys_process
from tests.support.stream import BOOKS, SHOES, delete, produce, purchase, stable_fields, view, wait_for, write_model

pytestmark = pytest.mark.integration


def stream_process(settings, log: Path) -> subprocess.Popen:
    # Small batches close together, so the kill lands in the middle of the stream.
    return recsys_process(
        settings,
        "stream",
        log,
        RECSYS_STREAM_MAX_EVENTS_PER_BATCH="50",
        RECSYS_STREAM_TRIGGER_SECONDS="0.2",
        RECSYS_SPARK_DRIVER_MEMORY="1g",
    )


def snapshot(db, prefix: str) -> dict[str, list[str]]:
    query = {"_id": {"$regex": f"^{prefix}"}}
    return {c: [stable_fields(d) for d in db[c].find(query, sort=[("_id", 1)])] for c in (HISTORY, RECOMMENDATIONS)}


def shopper_events(prefix: str) -> list[dict]:
    rng = random.Random(11)
    products = [*SHOES, *BOOKS, *(f"x{i}" for i in range(30))]
    events = []
    for _ in range(600):
        user, second = f"{prefix}{rng.randrange(30):02d}", rng.randrange(3600)
        roll = rng.random()
        if roll < 0.85:
            events.append(view(user, rng.choice(products), second))
        elif roll < 0.95:
            events.append(delete(user, rng.choice(products), second))
        else:
            events.append(purchase(user, rng.choice(products), second))
    return events


def test_sigkill_mid_stream_then_restart_gives_the_same_documents_as_an_uninterrupted_run(
    spark, settings, mongo_db, unique
):
    prefix = f"k{unique}-"
    reference = dataclasses.replace(
        settings, mongo_db=settings.mongo_db + "_ref", data_dir=settings.data_dir / "reference"
    )
    client = mongo_client(settings)
    reference_db = client[reference.mongo_db]
    try:
        write_model(
            spark,
            settings,
            mongo_db,
            f"v1-{unique}",
            {**SHOES, **BOOKS},
            {f"{prefix}{i:02d}": [0.5, 0.5, 0.0] for i in range(0, 30, 3)},
        )
        reference_db[MODELS].insert_one(mongo_db[MODELS].find_one())
        produce(settings, shopper_events(prefix))

        processor = BatchProcessor(reference, spark)
        start_query(spark, reference, processor, once=True).awaitTermination()
        processor.close()
        expected = snapshot(reference_db, prefix)
        assert len(expected[HISTORY]) == 30

        log = settings.data_dir / "stream.log"
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        first = stream_process(settings, log)
        try:
            wait_for(
                lambda: mongo_db[HISTORY].count_documents({"_id": {"$regex": f"^{prefix}"}}) > 0,
                120,
                "the first batch of the killed run",
            )
            os.killpg(first.pid, signal.SIGKILL)
            first.wait(timeout=30)
        finally:
            if first.poll() is None:
                os.killpg(first.pid, signal.SIGKILL)
        assert snapshot(mongo_db, prefix) != expected, "the kill came after the stream was done"

        second = stream_process(settings, log)
        try:
            wait_for(lambda: snapshot(mongo_db, prefix) == expected, 180, "the restarted run to catch up")
            time.sleep(1.5)  # more batches may run; they must not change anything
            # To the job's process only, as `kill <pid>` would: the JVM must outlive the last batch.
            os.kill(second.pid, signal.SIGTERM)
            assert second.wait(timeout=60) == 0, log.read_text()[-3000:]
        finally:
            if second.poll() is None:
                os.killpg(second.pid, signal.SIGKILL)
        assert snapshot(mongo_db, prefix) == expected
        assert "SIGTERM received" in log.read_text()
    finally:
        client.drop_database(reference.mongo_db)
        client.close()
