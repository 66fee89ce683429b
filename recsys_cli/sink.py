"""`recsys sink`: every record of the events topic into the lake's `events_landing` table, exactly once."""

from __future__ import annotations

import logging

import typer

from recsys_cli.common import friendly_errors, settings

HELP = """Land every record of the events topic (RECSYS_TOPIC_PREFIX + events) in the Delta table RECSYS_DATA_DIR/lake/events_landing, as it came.

Each record keeps its value (text), topic, partition, offset and Kafka timestamp, in the day partition of the event's own time (its arrival when it is not an event the lake can place). The batch layer builds raw_events from these records, so days older than Kafka's retention (RECSYS_KAFKA_RETENTION_HOURS) can still be rebuilt.

Offsets are kept in RECSYS_DATA_DIR/checkpoints/sink: after a crash or kill the sink resumes where it stopped and lands nothing twice. A micro-batch runs every RECSYS_SINK_TRIGGER_SECONDS. SIGTERM or Ctrl-C stops it; if Kafka goes down it retries with backoff (with --once it fails instead).
"""


def register(app: typer.Typer) -> None:
    """Add `recsys sink` to `app`."""

    @app.command(help=HELP)
    @friendly_errors
    def sink(
        once: bool = typer.Option(False, "--once", help="Land the records in Kafka now, then exit (backfills, tests)."),
    ) -> None:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        logging.getLogger("kafka").setLevel(logging.ERROR)
        logging.getLogger("py4j").setLevel(logging.ERROR)
        from recsys_io.kafka import ensure_topics
        from streaming.sink import run

        s = settings()
        ensure_topics(s)  # Kafka down ends here, in one sentence
        run(s, once=once, progress=lambda line: typer.echo(line, err=True))
