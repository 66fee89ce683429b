"""Resources of the code location, each a ConfigurableResource built from the one Settings object.

`build_resources(settings)` is the only place they are assembled, so the UI, the CLI and the
tests run the assets against the same kind of servers, differing only in settings.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from dagster import ConfigurableResource
from dagster_pyspark import PySparkResource
from pymongo.errors import PyMongoError

from recsys_core.errors import ServerUnavailable
from recsys_io.mongo import ensure_indexes, mongo_client, serving_db
from recsys_io.spark import spark_conf
from recsys_core.settings import Settings, Topics


class LakeResource(ConfigurableResource):
    """Where the batch layer keeps its Delta tables and model versions (RECSYS_DATA_DIR)."""

    data_dir: str
    bestseller_window_days: int = 30
    retrain_min_new_events: int = 1000

    def table(self, name: str) -> str:
        return str(Path(self.data_dir) / "lake" / name)

    def model_dir(self, version: str) -> Path:
        return Path(self.data_dir) / "models" / "als" / version

    @property
    def checkpoint_dir(self) -> Path:
        """Where ALS checkpoints its long lineages (kept apart from model versions)."""
        return Path(self.data_dir) / "checkpoints" / "als"

    def exists(self, name: str) -> bool:
        return (Path(self.table(name)) / "_delta_log").is_dir()


class KafkaResource(ConfigurableResource):
    """Kafka as Spark's batch source reads it."""

    bootstrap_servers: str
    topic_prefix: str = "recsys."

    @property
    def events_topic(self) -> str:
        return Topics(self.topic_prefix).events

    @property
    def catalog_topic(self) -> str:
        return Topics(self.topic_prefix).catalog

    def source_options(self, topic: str) -> dict[str, str]:
        return {"kafka.bootstrap.servers": self.bootstrap_servers, "subscribe": topic,
                "failOnDataLoss": "false", "kafka.request.timeout.ms": "10000",
                "kafka.default.api.timeout.ms": "20000"}


class MongoResource(ConfigurableResource):
    """The serving store (the same database the API and the streaming job use)."""

    url: str
    database: str = "recsys"

    @contextmanager
    def db(self) -> Iterator[Any]:
        settings = dataclasses.replace(Settings.from_env(), mongo_uri=self.url, mongo_db=self.database)
        client = mongo_client(settings)
        try:
            ensure_indexes(settings, client)
            yield serving_db(client, settings)
        except PyMongoError as error:
            raise ServerUnavailable("MongoDB", self.url, str(error)) from error
        finally:
            client.close()


def build_resources(settings: Settings) -> dict[str, Any]:
    return {
        "spark": PySparkResource(spark_config=spark_conf(settings, "recsys-batch")),
        "kafka": KafkaResource(bootstrap_servers=settings.kafka_servers, topic_prefix=settings.topic_prefix),
        "mongo": MongoResource(url=settings.mongo_url, database=settings.mongo_db),
        "lake": LakeResource(data_dir=str(settings.data_dir),
                             bestseller_window_days=settings.bestseller_window_days,
                             retrain_min_new_events=settings.retrain_min_new_events),
    }
