"""One micro-batch, as the driver sees it: name the model, run a task per Kafka partition, report.

The driver's work is the same whatever the batch holds: one read of the model registry, one Spark
job whose tasks do the per-record and per-shopper work on executors (streaming.shoppers), and one
small summary per task to add up. It never sees a record.

The batch is committed to the query's checkpoint only when `__call__` returns, and it returns
only after every task's DLQ acks and Mongo writes succeeded, so a crash at any point replays the
batch, and the idempotent writes make the replay (and any task Spark runs again) harmless.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING, Any

from recsys_core.settings import Settings
from recsys_io.mongo import mongo_client, serving_db
from streaming.model import ModelCache
from streaming.retry import StopRequested, with_backoff
from streaming.shoppers import PartitionTask

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

log = logging.getLogger("recsys.stream")
COUNTS = ("records", "events", "dead_letters", "erased", "users")
PHASES = ("history", "recommendations", "waiting", "cpu_seconds")


class BatchProcessor:
    """The `foreachBatch` function of the speed layer, with what the driver keeps between batches."""

    def __init__(self, settings: Settings, spark: SparkSession):
        self.settings = settings
        self.models = ModelCache(spark, settings)
        self.stopping = threading.Event()
        # Held for a whole batch: shutdown takes it to know no batch is half done.
        self.busy = threading.Lock()
        self._mongo = mongo_client(settings)
        self.batches = 0
        self.events = 0
        self.dead_letters = 0
        self.last_batch: dict[str, Any] = {}  # `add_up` of the last batch's tasks

    def __call__(self, frame: DataFrame, batch_id: int) -> None:
        with self.busy:
            if self.stopping.is_set():
                raise StopRequested(f"batch {batch_id}")
            started = time.monotonic()
            model = with_backoff(
                lambda: self.models.current(serving_db(self._mongo, self.settings)),
                f"batch {batch_id}: reading the model registry",
                self.stopping,
            )
            summaries = frame.rdd.mapPartitions(PartitionTask(self.settings, model, batch_id)).collect()
            total = self.last_batch = add_up(summaries)
            for failed in {s["model_failed"] for s in summaries if "model_failed" in s}:
                self.models.failed(*failed)
            self.batches += 1
            self.events += total["events"]
            self.dead_letters += total["dead_letters"]
            if total["records"]:
                log.info(
                    "batch %d: %d events applied, %d to the DLQ, %d users, %d tasks, %.0f ms (in tasks: "
                    "history %.0f ms, recommendations %.0f ms, waiting for the store %.0f ms, longest task %.0f ms)",
                    batch_id,
                    total["events"],
                    total["dead_letters"],
                    total["users"],
                    len(summaries),
                    (time.monotonic() - started) * 1000,
                    total["history"] * 1000,
                    total["recommendations"] * 1000,
                    total["waiting"] * 1000,
                    total["longest"] * 1000,
                )

    def close(self) -> None:
        self._mongo.close()


def add_up(summaries: list[dict[str, Any]]) -> dict[str, Any]:
    """The batch's counts and task seconds from its tasks' summaries (`PartitionTask`)."""
    total: dict[str, Any] = {key: sum(s[key] for s in summaries) for key in (*COUNTS, *PHASES)}
    total["longest"] = max((s["seconds"] for s in summaries), default=0.0)
    return total
