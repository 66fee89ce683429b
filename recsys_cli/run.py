"""`recsys run`: the main job behind `make run`."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime

import typer

from recsys_cli.common import friendly_errors, settings
from recsys_core.events import parse_event
from recsys_core.io.kafka import make_consumer, make_producer
from recsys_core.io.mongo import PRODUCTS, mongo_client, serving_db
from recsys_core.settings import EVENTS_TOPIC, Settings
from recsys_core.stack import manager


def smoke_check(s: Settings) -> tuple[dict, dict]:
    """Produce a sample event and read it back; write and read a sample product document."""
    event = parse_event({"type": "product_view", "user_id": f"smoke-{uuid.uuid4().hex[:8]}",
                         "product_id": "smoke-product", "source": "recsys run"})
    producer = make_producer(s)
    try:
        metadata = producer.send(EVENTS_TOPIC, event, key=event["user_id"]).get(timeout=10)
    finally:
        producer.close()
    consumer = make_consumer(s, group_id=None, enable_auto_commit=False)
    try:
        from kafka import TopicPartition

        partition = TopicPartition(metadata.topic, metadata.partition)
        consumer.assign([partition])
        consumer.seek(partition, metadata.offset)
        records = consumer.poll(timeout_ms=10_000, max_records=1).get(partition, [])
    finally:
        consumer.close()
    if not records or records[0].value != event:
        raise typer.Exit(1)
    client = mongo_client(s)
    try:
        products = serving_db(client, s)[PRODUCTS]
        products.update_one({"_id": "smoke-product"},
                            {"$set": {"product_id": "smoke-product", "category_id": "smoke",
                                      "name": "Smoke test product", "updated_at": datetime.now(UTC)}},
                            upsert=True)
        document = products.find_one({"_id": "smoke-product"})
    finally:
        client.close()
    return records[0].value, document


def register(app: typer.Typer) -> None:
    @app.command()
    @friendly_errors
    def run() -> None:
        """The main job: start the stack, check the data path end to end and say where everything is."""
        s = settings()
        started = time.monotonic()
        typer.echo("Starting the local stack (first run provisions Kafka, FerretDB and Spark jars) ...")
        rows = manager.up(s)
        typer.echo(manager.format_status(rows))
        event, document = smoke_check(s)
        typer.echo(f"\nKafka round trip: produced and read back event {event['event_id']} on {EVENTS_TOPIC}")
        typer.echo(f"MongoDB round trip: products/{document['_id']} in database {s.mongo_db!r}")
        typer.echo(f"\nReady in {time.monotonic() - started:.0f}s.")
        typer.echo(f"  Kafka     {s.kafka_servers}   topics recsys.events, recsys.catalog, recsys.events.dlq")
        typer.echo(f"  MongoDB   {s.mongo_url}{s.mongo_db}")
        typer.echo(f"  Data      {s.data_dir}  (lake/, models/, checkpoints/, stack/)")
        typer.echo("  Logs      recsys stack logs kafka|mongo;  stop with: recsys stack down")
