"""Resources of the code location, each a ConfigurableResource whose values come from the one Settings object.

`build_resources(settings)` is the only place they are assembled, so the UI, the CLI and the
tests run the assets against the same kind of servers, differing only in settings. The CLI, the
tests and the benchmarks pass the settings they already read. The code location passes none: its
resources are defined without values and read the RECSYS_* variables when Dagster initialises
them for a run or a sensor tick, in the process that runs it. So the UI never displays a value (a
MongoDB URI may carry a password), and a bad value fails the run naming the variable.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any, ClassVar, Self

from dagster import ConfigurableResource, InitResourceContext
from dagster_pyspark import PySparkResource
from dagster_pyspark.resources import spark_session_from_config
from pymongo.errors import PyMongoError

from recsys_core.errors import ServerUnavailable
from recsys_core.settings import Settings, Topics
from recsys_io.mongo import ensure_indexes, mongo_client, serving_db
from recsys_io.spark import kafka_source_options, prepare_driver_process, spark_conf


class FromSettings(ConfigurableResource):
    """A resource whose fields left unset (None) take their values from the settings when Dagster initialises it."""

    # Each field and the Settings attribute that holds its value.
    settings_fields: ClassVar[dict[str, str]] = {}

    @classmethod
    def settings_values(cls, settings: Settings) -> dict[str, Any]:
        """Every field's value under `settings`."""
        values = {name: getattr(settings, attribute) for name, attribute in cls.settings_fields.items()}
        return {name: str(value) if isinstance(value, Path) else value for name, value in values.items()}

    @classmethod
    def from_settings(cls, settings: Settings) -> Self:
        return cls(**cls.settings_values(settings))

    def resolved(self) -> Self:
        """This resource with its unset fields read from the RECSYS_* variables (validated by Settings)."""
        given = {name: getattr(self, name) for name in type(self).model_fields if getattr(self, name) is not None}
        if len(given) == len(type(self).model_fields):
            return self
        return type(self)(**{**self.settings_values(Settings.from_env()), **given})

    def create_resource(self, context: InitResourceContext) -> Self:
        return self.resolved()


class LakeResource(FromSettings):
    """Where the batch layer keeps its Delta tables and model versions (RECSYS_DATA_DIR)."""

    settings_fields = {
        "data_dir": "data_dir",
        "bestseller_window_days": "bestseller_window_days",
        "retrain_min_new_events": "retrain_min_new_events",
        "events_start_date": "events_start_date",
        "erasure_vacuum_retain_hours": "erasure_vacuum_retain_hours",
    }
    data_dir: str | None = None
    bestseller_window_days: int | None = None
    retrain_min_new_events: int | None = None
    events_start_date: str | None = None
    erasure_vacuum_retain_hours: int | None = None

    def table(self, name: str) -> str:
        return str(Path(self.data_dir) / "lake" / name)

    def model_dir(self, version: str) -> Path:
        return self.models_dir / version

    @property
    def models_dir(self) -> Path:
        """Where every model version's directory is."""
        return Path(self.data_dir) / "models" / "als"

    @property
    def events_first_day(self) -> date:
        """The lake's first day (RECSYS_EVENTS_START_DATE), as the validation of landed records needs it."""
        return date.fromisoformat(self.events_start_date)

    @property
    def checkpoint_dir(self) -> Path:
        """Where ALS checkpoints its long lineages (kept apart from model versions)."""
        return Path(self.data_dir) / "checkpoints" / "als"

    def exists(self, name: str) -> bool:
        return (Path(self.table(name)) / "_delta_log").is_dir()


class KafkaResource(FromSettings):
    """Kafka as Spark's batch source reads it, and how far behind its end the sink may fall."""

    settings_fields = {
        "bootstrap_servers": "kafka_servers",
        "topic_prefix": "topic_prefix",
        "sink_max_lag_minutes": "sink_max_lag_minutes",
    }
    bootstrap_servers: str | None = None
    topic_prefix: str | None = None
    sink_max_lag_minutes: float | None = None

    def settings(self) -> Settings:
        """Settings naming this Kafka, for recsys_io's clients."""
        return dataclasses.replace(
            Settings.from_env(), kafka_bootstrap=self.bootstrap_servers, topic_prefix=self.topic_prefix
        )

    @property
    def events_topic(self) -> str:
        return Topics(self.topic_prefix).events

    @property
    def catalog_topic(self) -> str:
        return Topics(self.topic_prefix).catalog

    def source_options(self, topic: str) -> dict[str, str]:
        return kafka_source_options(self.bootstrap_servers, topic)


class MongoResource(FromSettings):
    """The serving store (the same database the API and the streaming job use)."""

    settings_fields = {"url": "mongo_url", "database": "mongo_db"}
    url: str | None = None
    database: str | None = None

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


class SparkResource(FromSettings, PySparkResource):
    """dagster-pyspark's session resource; unset, its conf is the platform's (recsys_io.spark) for the settings
    read when the run starts, which is also when a missing jar is reported."""

    spark_config: dict[str, Any] | None = None

    @classmethod
    def _is_dagster_maintained(cls) -> bool:
        return False

    @classmethod
    def settings_values(cls, settings: Settings) -> dict[str, Any]:
        return {"spark_config": spark_conf(settings, "recsys-batch")}

    def setup_for_execution(self, context: InitResourceContext) -> None:
        conf = self.resolved().spark_config or {}
        prepare_driver_process(conf)
        self._spark_session = spark_session_from_config(conf)

    def create_resource(self, context: InitResourceContext) -> Self:
        return self  # the instance whose session setup_for_execution started


RESOURCES: dict[str, type[FromSettings]] = {
    "spark": SparkResource,
    "kafka": KafkaResource,
    "mongo": MongoResource,
    "lake": LakeResource,
}


def build_resources(settings: Settings | None = None) -> dict[str, Any]:
    """The resources with the values of `settings`, or (None) reading them when a run initialises them."""
    return {key: cls() if settings is None else cls.from_settings(settings) for key, cls in RESOURCES.items()}
