"""The speed layer's streaming query: Kafka `recsys.events` -> foreachBatch (tasks on executors) -> MongoDB.

Offsets live in the query's checkpoint (RECSYS_DATA_DIR/checkpoints/stream), so a restart,
even after SIGKILL, resumes with the first batch that was not committed. SIGTERM lets the
running batch finish, then stops. If the query fails (Kafka down, say), it is started again
from its checkpoint after a growing pause, and the log says why.
"""

from __future__ import annotations

import logging
import signal
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from recsys_core.errors import RecsysError
from recsys_core.settings import Settings
from recsys_io.spark import get_spark, kafka_source_options
from streaming.batch import BatchProcessor
from streaming.retry import FIRST_DELAY, MAX_DELAY

if TYPE_CHECKING:
    from pyspark.sql import SparkSession
    from pyspark.sql.streaming import StreamingQuery

log = logging.getLogger("recsys.stream")
QUERY_NAME = "recsys_speed_layer"
POLL_SECONDS = 0.5
STOP_GRACE_SECONDS = 20.0


def checkpoint_dir(settings: Settings) -> Path:
    return settings.checkpoints_dir / "stream"


def start_query(
    spark: SparkSession, settings: Settings, processor: BatchProcessor, *, once: bool = False
) -> StreamingQuery:
    """Start the query; `once` processes what is in the topic now and ends (availableNow)."""
    source = (
        spark.readStream.format("kafka")
        .options(**kafka_source_options(settings.kafka_servers, settings.topics.events))
        # Only used without a checkpoint; "earliest" rebuilds the serving store from all Kafka holds.
        .option("startingOffsets", settings.stream_starting_offsets)
        .option("maxOffsetsPerTrigger", settings.stream_max_events_per_batch)
        .load()
        .select("topic", "partition", "offset", "value")
    )
    writer = (
        source.writeStream.queryName(QUERY_NAME)
        .foreachBatch(processor)
        .option("checkpointLocation", str(checkpoint_dir(settings)))
    )
    if once:
        writer = writer.trigger(availableNow=True)
    else:
        writer = writer.trigger(processingTime=f"{settings.stream_trigger_seconds} seconds")
    return writer.start()


def stop_after_batch(query: StreamingQuery, processor: BatchProcessor) -> None:
    """Stop between batches: a running batch finishes; one about to start is refused and replays later.

    A batch still running after STOP_GRACE_SECONDS is waiting out an outage in its tasks: it is
    cancelled, uncommitted, and replays when the job starts again.
    """
    processor.stopping.set()
    if not processor.busy.acquire(timeout=STOP_GRACE_SECONDS):
        log.warning("the batch in flight is still running after %.0fs: cancelling it, it replays", STOP_GRACE_SECONDS)
        query.stop()  # cancels the query's jobs, the batch's tasks with them
        processor.busy.acquire()
    processor.busy.release()  # the batch in flight, if any, has ended; later ones refuse to start
    query.stop()


class ShutdownSignals:
    """SIGTERM / SIGINT ask for a clean stop; the main loop acts on it between waits."""

    def __init__(self) -> None:
        self.requested = threading.Event()
        self._previous = {}

    def __enter__(self) -> ShutdownSignals:
        for sig in (signal.SIGTERM, signal.SIGINT):
            self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, frame) -> None:
        log.info("%s received: finishing the current batch, then stopping", signal.Signals(signum).name)
        self.requested.set()

    def __exit__(self, *exc) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


def run(settings: Settings, *, once: bool = False, spark: SparkSession | None = None) -> BatchProcessor:
    """Run the speed layer until SIGTERM (or, with `once`, until the topic is drained)."""
    # One executor stays with the job through quiet spells, so the first event after one is applied
    # within seconds rather than after an executor has started (on the local cluster).
    spark = spark or get_spark(settings, "recsys-stream", min_executors=1)
    processor = BatchProcessor(settings, spark)
    delay = FIRST_DELAY
    log.info(
        "reading %s at %s every %ss, checkpoint %s",
        settings.topics.events,
        settings.kafka_servers,
        settings.stream_trigger_seconds,
        checkpoint_dir(settings),
    )
    from py4j.protocol import Py4JError

    try:
        with ShutdownSignals() as signals:
            while not signals.requested.is_set():
                query = start_query(spark, settings, processor, once=once)
                error = _wait(query, processor, signals)
                if error is None or signals.requested.is_set():
                    break
                log.warning(
                    "the streaming query stopped (%s); restarting from the checkpoint in %.0fs",
                    first_line(error),
                    delay,
                )
                if signals.requested.wait(delay):
                    break
                delay = min(delay * 2, MAX_DELAY)
    except (Py4JError, ConnectionError) as error:
        # The JVM died under us (killed with the process group, out of memory): nothing to retry here.
        raise RecsysError(
            f"the Spark driver stopped unexpectedly ({first_line(error)}); start `recsys "
            "stream` again, it resumes from its checkpoint"
        ) from error
    finally:
        processor.close()
    log.info(
        "stopped: %d batches, %d events applied, %d records to the DLQ",
        processor.batches,
        processor.events,
        processor.dead_letters,
    )
    return processor


def _wait(query: StreamingQuery, processor: BatchProcessor, signals: ShutdownSignals) -> Exception | None:
    """Wait for the query to end; None when it ended normally or on request, else its error."""
    from pyspark.errors import StreamingQueryException

    while True:
        if signals.requested.is_set():
            stop_after_batch(query, processor)
            return None
        try:
            if query.awaitTermination(POLL_SECONDS):
                return None
        except StreamingQueryException as error:
            return None if processor.stopping.is_set() else error


def first_line(error: Exception) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0][:300]
