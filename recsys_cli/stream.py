"""`recsys stream`: the speed layer (Spark Structured Streaming, Kafka -> MongoDB)."""

from __future__ import annotations

import logging

import typer

from recsys_cli.common import friendly_errors, settings

HELP = """Keep every shopper's browsing history and real-time recommendations in MongoDB fresh.

Reads the events topic (RECSYS_TOPIC_PREFIX + events) from Kafka in micro-batches (every RECSYS_STREAM_TRIGGER_SECONDS, at most RECSYS_STREAM_MAX_EVENTS_PER_BATCH records each), validates each record, sends bad ones to the dead-letter topic (<prefix>events.dlq) with the reason, updates `history` and `recommendations` with the promoted ALS model (picked up at the next batch when a new one is promoted) and the neighbours of recent views.

Offsets are kept in RECSYS_DATA_DIR/checkpoints/stream: after a crash or kill the job resumes where it stopped, and replayed batches change nothing twice. SIGTERM or Ctrl-C finishes the current batch and exits. If Kafka or MongoDB is down the job waits, retrying with backoff.
"""


def register(app: typer.Typer) -> None:
    """Add `recsys stream` to `app`."""

    @app.command(help=HELP)
    @friendly_errors
    def stream(
        once: bool = typer.Option(
            False, "--once", help="Process the events already in Kafka, then exit (tests, backfills)."
        ),
        verbose: bool = typer.Option(
            False, "--verbose", "-v", help="Also log the Kafka client's and the Spark bridge's own messages."
        ),
    ) -> None:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        logging.getLogger("kafka").setLevel(logging.INFO if verbose else logging.ERROR)
        logging.getLogger("py4j").setLevel(logging.INFO if verbose else logging.ERROR)
        from recsys_io.kafka import ensure_topics
        from recsys_io.mongo import require_mongo
        from streaming.job import run

        s = settings()
        require_mongo(s)
        ensure_topics(s)
        processor = run(s, once=once)
        typer.echo(
            f"stream stopped: {processor.batches} batches, {processor.events} events applied, "
            f"{processor.dead_letters} records to the DLQ"
        )
