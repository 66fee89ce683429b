"""`recsys sink`: Kafka -> events_landing exactly once, even across SIGKILL; the sink_keeps_up check."""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest
from dagster import Definitions

from recsys_assets.landing import events_landing, sink_keeps_up, sink_watch
from recsys_assets.resources import build_resources
from recsys_io.kafka import end_offsets, make_producer
from recsys_io.lake_log import delta_version
from tests.support.batch import land, produce
from tests.support.isolation import recsys_process
from tests.support.stream import wait_for

pytestmark = pytest.mark.integration


def sink_process(settings, log: Path, **extra: str) -> subprocess.Popen:
    # In-process Spark: the standalone cluster would only release the killed driver's executors
    # after it noticed the driver had gone, and the restarted sink would wait for them.
    env = {"RECSYS_SINK_TRIGGER_SECONDS": "0.3", "RECSYS_SPARK_DRIVER_MEMORY": "1g", "RECSYS_SPARK_WORKERS": "0"}
    return recsys_process(settings, "sink", log, **{**env, **extra})


def produce_continuously(settings, stop: threading.Event, sent: list[int]) -> None:
    """About 100 records a second until `stop`."""
    producer = make_producer(settings)
    try:
        while not stop.is_set():
            for _ in range(10):
                producer.send(settings.topics.events, key=f"u{sent[0] % 7}", value={"n": sent[0]})
                sent[0] += 1
            time.sleep(0.1)
        producer.flush(30)
    finally:
        producer.close()


def landed_coordinates(spark, settings) -> tuple[int, int]:
    """(rows, distinct (topic, partition, offset)) in events_landing."""
    frame = spark.read.format("delta").load(str(settings.landing_dir))
    return frame.count(), frame.select("topic", "partition", "offset").distinct().count()


def test_sigkill_mid_flow_then_restart_lands_every_record_exactly_once(spark, settings):
    log = settings.data_dir / "sink.log"
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    stop, sent = threading.Event(), [0]
    producer = threading.Thread(target=produce_continuously, args=(settings, stop, sent))
    producer.start()
    try:
        # Small batches, so the kill lands in the middle of the flow.
        first = sink_process(settings, log, RECSYS_SINK_MAX_RECORDS_PER_BATCH="300")
        try:
            wait_for(lambda: delta_version(settings.landing_dir) is not None, 300, "the killed run's first batch")
            os.killpg(first.pid, signal.SIGKILL)
            first.wait(timeout=30)
        finally:
            if first.poll() is None:
                os.killpg(first.pid, signal.SIGKILL)
        killed_at = sent[0]
        second = sink_process(settings, log)  # catches up in batches as large as the backlog
        try:
            time.sleep(10)  # records keep coming while the restarted sink starts
            stop.set()
            producer.join(60)
            total = sum(end_offsets(settings, settings.topics.events).values())
            assert total == sent[0] > killed_at
            wait_for(lambda: landed_coordinates(spark, settings)[1] == total, 400, "the restarted sink to catch up")
            os.kill(second.pid, signal.SIGTERM)
            assert second.wait(timeout=60) == 0, log.read_text()[-3000:]
        finally:
            if second.poll() is None:
                os.killpg(second.pid, signal.SIGKILL)
    finally:
        stop.set()
        producer.join(60)
    rows, distinct = landed_coordinates(spark, settings)
    assert (rows, distinct) == (total, total)  # 0 lost, 0 duplicated
    assert "records landed" in log.read_text()


def test_sink_keeps_up_warns_with_the_lag_when_records_wait_unlanded(spark, settings, unique):
    def check(max_lag_minutes: float):
        resources = build_resources(dataclasses.replace(settings, sink_max_lag_minutes=max_lag_minutes))
        defs = Definitions(
            assets=[events_landing], asset_checks=[sink_keeps_up], jobs=[sink_watch], resources=resources
        )
        result = defs.resolve_job_def("sink_watch").execute_in_process()
        (evaluation,) = result.get_asset_check_evaluations()
        return evaluation.passed, {k: v.value for k, v in evaluation.metadata.items()}

    produce(settings, [{"n": i, "unique": unique} for i in range(3)])
    land(settings, spark)
    assert check(15) == (True, {"lag_minutes": 0.0, "records_behind": 0, "max_lag_minutes": 15})
    produce(settings, [{"n": 3}, b"not json"])
    time.sleep(1.5)
    passed, metadata = check(0.01)  # 0.6 s
    assert not passed and metadata["records_behind"] == 2 and metadata["lag_minutes"] > 0.01
