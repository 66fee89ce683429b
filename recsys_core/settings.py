"""The one settings object: every knob is a RECSYS_* environment variable, read here and only here.

`Settings.from_env()` validates every value and names the variable on failure, so a typo in a
deployment fails at start-up with a sentence, not deep inside a Spark job.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from recsys_core.errors import SettingsError

LANDING_TABLE = "events_landing"


@dataclass(frozen=True)
class Topics:
    """The platform's Kafka topics, all named from one prefix (RECSYS_TOPIC_PREFIX)."""

    prefix: str

    @property
    def events(self) -> str:
        return f"{self.prefix}events"

    @property
    def catalog(self) -> str:
        return f"{self.prefix}catalog"

    @property
    def dlq(self) -> str:
        return f"{self.prefix}events.dlq"

    @property
    def all(self) -> tuple[str, str, str]:
        return (self.events, self.catalog, self.dlq)


def _topic_prefix(name: str, raw: str) -> str:
    # Kafka topic names allow letters, digits, '.', '_' and '-' (and at most 249 characters).
    if not re.fullmatch(r"[A-Za-z0-9._-]{0,200}", raw):
        raise SettingsError(name, raw, "expected letters, digits, '.', '_' or '-' (a Kafka topic name prefix)")
    return raw


def _whole_number(name: str, raw: str) -> int:
    try:
        return int(raw)
    except ValueError:
        raise SettingsError(name, raw, "expected a whole number") from None


def _positive_int(name: str, raw: str) -> int:
    value = _whole_number(name, raw)
    if value <= 0:
        raise SettingsError(name, raw, "expected a number greater than 0")
    return value


def _count(name: str, raw: str) -> int:
    value = _whole_number(name, raw)
    if value < 0:
        raise SettingsError(name, raw, "expected 0 or more")
    return value


def _memory(name: str, raw: str) -> str:
    # A size as Spark and the JVM read it; the unit is required, since Spark reads a bare number as bytes.
    value = raw.strip().lower()
    if not re.fullmatch(r"[1-9][0-9]*[kmgt]", value):
        raise SettingsError(name, raw, "expected a size such as 512m or 2g")
    return value


def _date(name: str, raw: str) -> str:
    try:
        return date.fromisoformat(raw).isoformat()
    except ValueError:
        raise SettingsError(name, raw, "expected a date as YYYY-MM-DD") from None


def _port(name: str, raw: str) -> int:
    value = _positive_int(name, raw)
    if value > 65535:
        raise SettingsError(name, raw, "a TCP port is between 1 and 65535")
    return value


def _positive_float(name: str, raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(name, raw, "expected a number") from None
    if value <= 0:
        raise SettingsError(name, raw, "expected a number greater than 0")
    return value


def _fraction(name: str, raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(name, raw, "expected a number") from None
    if not 0 <= value <= 1:
        raise SettingsError(name, raw, "expected a number from 0 to 1")
    return value


def _bootstrap(name: str, raw: str) -> str:
    servers = [s.strip() for s in raw.split(",") if s.strip()]
    if not servers:
        raise SettingsError(name, raw, "expected host:port[,host:port...]")
    for server in servers:
        host, sep, port = server.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise SettingsError(name, raw, f"{server!r} is not host:port")
    return ",".join(servers)


def _mongo_uri(name: str, raw: str) -> str:
    parts = urlsplit(raw)
    if parts.scheme not in ("mongodb", "mongodb+srv") or not parts.netloc:
        raise SettingsError(name, raw, "expected mongodb://host:port[/...] or mongodb+srv://...")
    for host in parts.netloc.rsplit("@", 1)[-1].split(","):
        _, sep, port = host.rpartition(":")
        if sep and not port.isdigit():
            raise SettingsError(name, raw, f"port of {host!r} is not a number")
    return raw


def _text(name: str, raw: str) -> str:
    if not raw.strip():
        raise SettingsError(name, raw, "must not be empty")
    return raw.strip()


def _options(name: str, raw: str) -> str:
    return " ".join(raw.split())


def _key_list(name: str, raw: str) -> tuple[str, ...]:
    return tuple(k.strip() for k in raw.split(",") if k.strip())


def _choice(*choices: str) -> Callable[[str, str], str]:
    def parse(name: str, raw: str) -> str:
        value = raw.strip().lower()
        if value not in choices:
            raise SettingsError(name, raw, f"expected {' or '.join(choices)}")
        return value

    return parse


def _spark_master(name: str, raw: str) -> str:
    raw = raw.strip()
    if not (raw.startswith(("local", "spark://", "yarn", "k8s://"))):
        raise SettingsError(name, raw, "expected local[N], spark://host:port, yarn or k8s://...")
    return raw


@dataclass(frozen=True)
class Var:
    """How one setting is read: variable name, parser, default and what it is for."""

    env: str
    parse: Callable[[str, str], object]
    default: str | None
    doc: str


def _var(env: str, parse: Callable[[str, str], object], default: str | None, doc: str):
    return field(metadata={"var": Var(env, parse, default, doc)})


@dataclass(frozen=True)
class Settings:
    data_dir: Path = _var(
        "RECSYS_DATA_DIR",
        lambda n, r: Path(r).expanduser().resolve(),
        ".recsys",
        "Where lake/, models/, checkpoints/ and stack/ live.",
    )
    tools_dir: Path = _var(
        "RECSYS_TOOLS_DIR",
        lambda n, r: Path(r).expanduser().resolve(),
        None,
        "Provisioned jars and binaries (default: DATA_DIR/stack/tools); several data dirs may share one.",
    )
    kafka_port: int = _var("RECSYS_KAFKA_PORT", _port, "9092", "Port of the local Kafka broker.")
    kafka_controller_port: int = _var(
        "RECSYS_KAFKA_CONTROLLER_PORT", _port, "9093", "Port of the local Kafka KRaft controller."
    )
    kafka_bootstrap: str = _var(
        "RECSYS_KAFKA_BOOTSTRAP",
        _bootstrap,
        None,
        "Kafka bootstrap servers; set it to use an external cluster (default: the local broker).",
    )
    kafka_heap: str = _var("RECSYS_KAFKA_HEAP", _text, "512m", "JVM heap of the local broker.")
    topic_prefix: str = _var(
        "RECSYS_TOPIC_PREFIX",
        _topic_prefix,
        "recsys.",
        "Prefix of the Kafka topics: <prefix>events, <prefix>catalog, <prefix>events.dlq.",
    )
    events_partitions: int = _var(
        "RECSYS_EVENTS_PARTITIONS", _positive_int, "3", "Partitions of the events topic when the platform creates it."
    )
    mongo_port: int = _var("RECSYS_MONGO_PORT", _port, "27017", "Port of the local MongoDB-compatible server.")
    ferretdb_backend: str = _var(
        "RECSYS_FERRETDB_BACKEND",
        _choice("sqlite", "postgresql"),
        "sqlite",
        "Where the local FerretDB keeps documents: sqlite (files under DATA_DIR/stack) "
        "or postgresql (a local PostgreSQL server the stack runs too).",
    )
    postgres_port: int = _var(
        "RECSYS_POSTGRES_PORT",
        _port,
        "5432",
        "Port of the local PostgreSQL server (only with RECSYS_FERRETDB_BACKEND=postgresql).",
    )
    mongo_uri: str = _var(
        "RECSYS_MONGO_URI", _mongo_uri, None, "MongoDB URI; set it to use an external server (default: the local one)."
    )
    mongo_db: str = _var("RECSYS_MONGO_DB", _text, "recsys", "Database of the serving store.")
    spark_master: str | None = _var(
        "RECSYS_SPARK_MASTER",
        _spark_master,
        None,
        "Spark master; local[N] runs in-process (default: the local cluster "
        "when RECSYS_SPARK_WORKERS is 1 or more, else local[2]).",
    )
    spark_workers: int = _var(
        "RECSYS_SPARK_WORKERS",
        _count,
        "0",
        "Workers of the local Spark standalone cluster `stack up` starts; 0: no cluster.",
    )
    spark_worker_cores: int = _var(
        "RECSYS_SPARK_WORKER_CORES",
        _positive_int,
        "1",
        "Cores each local Spark worker offers (one executor of this size per worker).",
    )
    spark_worker_memory: str = _var(
        "RECSYS_SPARK_WORKER_MEMORY", _memory, "1g", "Memory each local Spark worker offers (the heap of its executor)."
    )
    spark_master_port: int = _var(
        "RECSYS_SPARK_MASTER_PORT", _port, "7077", "Port of the local Spark master; worker i listens on this port + i."
    )
    spark_webui_port: int = _var(
        "RECSYS_SPARK_WEBUI_PORT",
        _port,
        "8080",
        "Port of the local Spark master's web UI and JSON status; worker i's UI is on this port + i.",
    )
    spark_driver_memory: str = _var(
        "RECSYS_SPARK_DRIVER_MEMORY", _text, "3g", "Spark driver memory (local mode: all of Spark)."
    )
    spark_driver_host: str = _var(
        "RECSYS_SPARK_DRIVER_HOST",
        _text,
        "127.0.0.1",
        "Address the Spark driver listens on and gives its executors; on a cluster of other machines, "
        "one of this machine's addresses that they reach.",
    )
    spark_java_options: str = _var(
        "RECSYS_SPARK_JAVA_OPTIONS",
        _options,
        "",
        "Extra JVM options of the Spark driver and executors, e.g. -XX:TieredStopAtLevel=1 for short-lived JVMs.",
    )
    spark_shuffle_partitions: int = _var(
        "RECSYS_SPARK_SHUFFLE_PARTITIONS", _positive_int, "4", "spark.sql.shuffle.partitions (small for 2 cores)."
    )
    api_host: str = _var("RECSYS_API_HOST", _text, "127.0.0.1", "Address the API listens on.")
    api_port: int = _var("RECSYS_API_PORT", _port, "8000", "Port of the API.")
    api_keys: tuple[str, ...] = _var(
        "RECSYS_API_KEYS",
        _key_list,
        "",
        "Comma-separated keys required (X-API-Key) on write routes; empty: writes are open.",
    )
    api_read_keys: tuple[str, ...] = _var(
        "RECSYS_API_READ_KEYS",
        _key_list,
        "",
        "Comma-separated keys required (X-API-Key) on routes that reveal one "
        "shopper's data; a write key is one too; empty: those reads are open.",
    )
    api_produce_timeout_seconds: float = _var(
        "RECSYS_API_PRODUCE_TIMEOUT_SECONDS",
        _positive_float,
        "5",
        "How long the API waits for Kafka to acknowledge a write before answering 503.",
    )
    api_impression_queue: int = _var(
        "RECSYS_API_IMPRESSION_QUEUE",
        _positive_int,
        "10000",
        "Impressions the API keeps while Kafka has not acknowledged them (retried); past it new ones are dropped.",
    )
    attribution_window_hours: float = _var(
        "RECSYS_ATTRIBUTION_WINDOW_HOURS",
        _positive_float,
        "24",
        "A purchase this many hours or less after a click on the product is attributed to the clicked list.",
    )
    dagster_port: int = _var("RECSYS_DAGSTER_PORT", _port, "3000", "Port of the Dagster UI.")
    min_list_size: int = _var("RECSYS_MIN_LIST_SIZE", _positive_int, "5", "Lists shorter than this are served empty.")
    buy_again_weight: float | None = _var(
        "RECSYS_BUY_AGAIN_WEIGHT",
        _fraction,
        None,
        "Share of a shopper's recommendations given to products they buy again (0: the model's list alone); "
        "unset: the weight the buy_again_weight asset chose on the shop's orders (0 before its first run).",
    )
    events_start_date: str = _var(
        "RECSYS_EVENTS_START_DATE",
        _date,
        "2026-01-01",
        "First day of the daily event partitions in Dagster; keep it fixed "
        "once deployed (partition keys and backfills refer to days from it). "
        "Every layer refuses an event timed before it, with the reason.",
    )
    bestseller_window_days: int = _var(
        "RECSYS_BESTSELLER_WINDOW_DAYS", _positive_int, "30", "Bestsellers count distinct buyers over this many days."
    )
    retrain_min_new_events: int = _var(
        "RECSYS_RETRAIN_MIN_NEW_EVENTS",
        _positive_int,
        "1000",
        "New raw events since the current model that trigger a retrain.",
    )
    stream_trigger_seconds: float = _var(
        "RECSYS_STREAM_TRIGGER_SECONDS", _positive_float, "1", "Micro-batch interval of the streaming job."
    )
    stream_max_events_per_batch: int = _var(
        "RECSYS_STREAM_MAX_EVENTS_PER_BATCH",
        _positive_int,
        "20000",
        "Most Kafka records one micro-batch of the streaming job reads (bounds memory and latency after a backlog).",
    )
    stream_starting_offsets: str = _var(
        "RECSYS_STREAM_STARTING_OFFSETS",
        _choice("earliest", "latest"),
        "earliest",
        "Where the streaming job starts when it has no checkpoint yet: "
        "earliest (rebuild from all Kafka holds) or latest (only new events).",
    )
    sink_trigger_seconds: float = _var(
        "RECSYS_SINK_TRIGGER_SECONDS", _positive_float, "2", "Micro-batch interval of the Kafka -> Delta sink."
    )
    sink_max_records_per_batch: int = _var(
        "RECSYS_SINK_MAX_RECORDS_PER_BATCH",
        _positive_int,
        "200000",
        "Most Kafka records one micro-batch of the sink lands (bounds a batch after a backlog).",
    )
    sink_max_lag_minutes: float = _var(
        "RECSYS_SINK_MAX_LAG_MINUTES",
        _positive_float,
        "15",
        "The sink_keeps_up check warns when the oldest record not yet landed has waited longer.",
    )
    kafka_retention_hours: int = _var(
        "RECSYS_KAFKA_RETENTION_HOURS",
        _positive_int,
        "168",
        "How long the local (and compose) Kafka keeps records; the lake's events_landing is the record.",
    )
    erasure_vacuum_retain_hours: int = _var(
        "RECSYS_ERASURE_VACUUM_RETAIN_HOURS",
        _count,
        "168",
        "After an erasure deletes a shopper's rows, VACUUM removes the lake's files older than this "
        "(Delta's default; below it, time travel to a version before the erasure still holds them until then).",
    )
    ready_timeout_seconds: float = _var(
        "RECSYS_READY_TIMEOUT_SECONDS", _positive_float, "90", "How long `stack up` waits for a server to answer."
    )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            var: Var = f.metadata["var"]
            raw = environ.get(var.env)
            if raw is None or raw == "":
                raw = var.default
            values[f.name] = None if raw is None else var.parse(var.env, raw)
        if values["tools_dir"] is None:
            values["tools_dir"] = values["data_dir"] / "stack" / "tools"
        return cls(**values)

    @classmethod
    def variables(cls) -> list[Var]:
        return [f.metadata["var"] for f in dataclasses.fields(cls)]

    @property
    def topics(self) -> Topics:
        return Topics(self.topic_prefix)

    @property
    def events_first_day(self) -> date:
        """The lake's first daily partition (RECSYS_EVENTS_START_DATE): no layer accepts an earlier event."""
        return date.fromisoformat(self.events_start_date)

    @property
    def attribution_window(self) -> timedelta:
        """How long after a click a purchase of the product is owed to the clicked list (recsys_core.attribution)."""
        return timedelta(hours=self.attribution_window_hours)

    # --- derived addresses -------------------------------------------------------------------
    @property
    def kafka_is_local(self) -> bool:
        """The platform runs its own broker unless RECSYS_KAFKA_BOOTSTRAP names another one."""
        return self.kafka_bootstrap is None

    @property
    def mongo_is_local(self) -> bool:
        return self.mongo_uri is None

    @property
    def spark_cluster_is_local(self) -> bool:
        """The stack runs a Spark standalone cluster when RECSYS_SPARK_WORKERS is 1 or more."""
        return self.spark_workers >= 1

    @property
    def local_spark_master(self) -> str:
        return f"spark://127.0.0.1:{self.spark_master_port}"

    @property
    def spark_master_url(self) -> str:
        """RECSYS_SPARK_MASTER if set, else the local cluster if the stack runs one, else in-process."""
        if self.spark_master:
            return self.spark_master
        return self.local_spark_master if self.spark_cluster_is_local else "local[2]"

    @property
    def kafka_servers(self) -> str:
        return self.kafka_bootstrap or f"127.0.0.1:{self.kafka_port}"

    @property
    def mongo_url(self) -> str:
        return self.mongo_uri or f"mongodb://127.0.0.1:{self.mongo_port}/"

    # --- directories -------------------------------------------------------------------------
    @property
    def lake_dir(self) -> Path:
        return self.data_dir / "lake"

    @property
    def landing_dir(self) -> Path:
        """The Delta table every record of the events topic lands in (`events_landing`)."""
        return self.lake_dir / LANDING_TABLE

    @property
    def models_dir(self) -> Path:
        return self.data_dir / "models"

    @property
    def checkpoints_dir(self) -> Path:
        return self.data_dir / "checkpoints"

    @property
    def stack_dir(self) -> Path:
        return self.data_dir / "stack"

    @property
    def spark_jars_dir(self) -> Path:
        return self.tools_dir / "spark-jars"

    @property
    def kafka_jars_dir(self) -> Path:
        return self.tools_dir / "kafka-jars"

    @property
    def ferretdb_binary(self) -> Path:
        return self.tools_dir / "bin" / "ferretdb"
