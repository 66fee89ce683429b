"""The sink: every record of `recsys.events`, as it came, appended to the Delta table `events_landing`.

Kafka keeps records for RECSYS_KAFKA_RETENTION_HOURS; the lake keeps them for good, and the batch
layer rebuilds `raw_events` from it. The query is a projection and an append, no shuffle: each
Kafka partition's range of a micro-batch is one task on an executor, which computes every record's
`day` (recsys_core.landing) and writes its Parquet files. Exactly once: the checkpoint
(RECSYS_DATA_DIR/checkpoints/sink) holds each batch's offsets before it runs, and Delta's streaming
sink commits a batch id at most once, so a batch replayed after a crash or SIGKILL adds nothing
twice. A failed query (Kafka down) is started again from its checkpoint after a growing pause.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

from recsys_core.errors import RecsysError
from recsys_core.landing import landing_day
from recsys_core.settings import Settings
from recsys_io.spark import get_spark, kafka_source_options
from streaming.job import POLL_SECONDS, ShutdownSignals, first_line
from streaming.retry import FIRST_DELAY, MAX_DELAY

if TYPE_CHECKING:
    from pyspark.sql import SparkSession
    from pyspark.sql.streaming import StreamingQuery

log = logging.getLogger("recsys.sink")
QUERY_NAME = "recsys_events_landing"


def checkpoint_dir(settings: Settings) -> Path:
    return settings.checkpoints_dir / "sink"


def start_sink(spark: SparkSession, settings: Settings, *, once: bool = False) -> StreamingQuery:
    """Start the landing query; `once` lands what the topic holds now and ends (availableNow)."""
    from pyspark.sql import functions as F
    from pyspark.sql.types import DateType

    first_day = settings.events_first_day

    def day_of(value: str | None, kafka_ts_ms: int) -> date:
        return landing_day(value, kafka_ts_ms, first_day)

    day = F.udf(day_of, DateType(), useArrow=False)
    value = F.col("value").cast("string")
    landed = (
        spark.readStream.format("kafka")
        .options(**kafka_source_options(settings.kafka_servers, settings.topics.events))
        # Without a checkpoint: everything the topic still holds.
        .option("startingOffsets", "earliest")
        .option("maxOffsetsPerTrigger", settings.sink_max_records_per_batch)
        .load()
        .select(
            value.alias("value"),
            "topic",
            "partition",
            "offset",
            F.col("timestamp").alias("kafka_ts"),
            day(value, F.unix_millis("timestamp")).alias("day"),
        )
    )
    writer = (
        landed.writeStream.queryName(QUERY_NAME)
        .format("delta")
        .outputMode("append")
        .partitionBy("day")
        .option("checkpointLocation", str(checkpoint_dir(settings)))
    )
    if once:
        writer = writer.trigger(availableNow=True)
    else:
        writer = writer.trigger(processingTime=f"{settings.sink_trigger_seconds} seconds")
    return writer.start(str(settings.landing_dir))


@dataclass
class Landed:
    """What a run of the sink landed."""

    batches: int = 0
    records: int = 0


def run(
    settings: Settings,
    *,
    once: bool = False,
    spark: SparkSession | None = None,
    progress: Callable[[str], Any] = log.info,
) -> Landed:
    """Land records until SIGTERM (or, with `once`, until the topic's records now are landed).

    `once` fails (RecsysError) instead of retrying: a backfill waiting on it must hear of an outage.
    """
    spark = spark or get_spark(settings, "recsys-sink")
    landed = Landed()
    delay = FIRST_DELAY
    progress(
        f"landing {settings.topics.events} at {settings.kafka_servers} in {settings.landing_dir}, "
        f"checkpoint {checkpoint_dir(settings)}"
    )
    with ShutdownSignals() as signals:
        while not signals.requested.is_set():
            query = start_sink(spark, settings, once=once)
            error = _wait(query, signals, landed, progress)
            if error is None or signals.requested.is_set():
                break
            if once:
                raise RecsysError(f"the sink stopped ({first_line(error)}); run it again, it resumes where it stopped")
            progress(f"the sink stopped ({first_line(error)}); restarting from the checkpoint in {delay:.0f}s")
            if signals.requested.wait(delay):
                break
            delay = min(delay * 2, MAX_DELAY)
    progress(f"sink stopped: {landed.batches} batches, {landed.records} records landed")
    return landed


def _wait(
    query: StreamingQuery, signals: ShutdownSignals, landed: Landed, progress: Callable[[str], Any]
) -> Exception | None:
    """Wait for the query to end, reporting each batch; None when it ended normally or on request."""
    from pyspark.errors import StreamingQueryException

    last_batch = -1
    while True:
        if signals.requested.is_set():
            # Safe at any point: an uncommitted batch is replayed from the checkpoint and Delta adds it once.
            query.stop()
            _report(query, last_batch, landed, progress)
            return None
        try:
            ended = query.awaitTermination(POLL_SECONDS)
        except StreamingQueryException as error:
            return error
        finally:
            last_batch = _report(query, last_batch, landed, progress)
        if ended:
            return None


def _report(query: StreamingQuery, last_batch: int, landed: Landed, progress: Callable[[str], Any]) -> int:
    for batch in query.recentProgress:
        if batch["batchId"] > last_batch and batch["numInputRows"] > 0:
            landed.batches += 1
            landed.records += batch["numInputRows"]
            progress(f"batch {batch['batchId']}: {batch['numInputRows']} records landed")
        last_batch = max(last_batch, batch["batchId"])
    return last_batch
