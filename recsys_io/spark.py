"""The one SparkSession builder: Delta + Kafka jars from the provisioned directory, sized for 2 cores.

Sessions run in-process (`local[2]`) unless RECSYS_SPARK_MASTER names a cluster or the stack runs
its own standalone cluster (RECSYS_SPARK_WORKERS). pyspark is imported inside the functions so
that importing recsys_core never starts a JVM.
"""

from __future__ import annotations

import json
import os
import site
import sys
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from recsys_core.errors import RecsysError
from recsys_core.settings import Settings

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


def spark_jars(settings: Settings) -> list[Path]:
    jars = sorted(settings.spark_jars_dir.glob("*.jar"))
    if not any(j.name.startswith("delta-spark") for j in jars):
        raise RecsysError(
            f"Spark's Delta and Kafka jars are not in {settings.spark_jars_dir}: "
            "run `recsys stack provision` (or `make provision`) once to fetch them."
        )
    return jars


# ALS calls BLAS and LAPACK once per rating on vectors of its rank: with a native OpenBLAS it was
# no faster (docs/batch.md), and looking for one prints a dlopen failure on every fit where none
# is installed. So every JVM uses netlib's Java implementation without trying a native one.
JAVA_BLAS_ONLY = "-Ddev.ludovic.netlib.blas.allowNative=false -Ddev.ludovic.netlib.lapack.allowNative=false"


# Executors on the local cluster go back to their worker after this long without tasks, so that
# drivers which live long (the test session, a notebook, the Dagster daemon's runs) and the
# streaming job can share a few workers; Spark's shuffle tracking keeps executors whose shuffle
# output a running job still needs.
LOCAL_CLUSTER_IDLE_TIMEOUT = "20s"


def project_path() -> str | None:
    """The directory the project's packages were imported from, if the interpreter would not find them itself.

    Executors run `sys.executable` in their worker's work directory, with the environment the
    worker was started with: pointing their PYTHONPATH at the driver's copy makes them import the
    very code the driver runs (a checkout, an editable install or a source tree on PYTHONPATH).
    An ordinary install in site-packages needs nothing.
    """
    root = Path(__file__).resolve().parents[1]
    if root in {Path(p).resolve() for p in site.getsitepackages()}:
        return None
    return str(root)


def _cluster_conf(settings: Settings, min_executors: int) -> dict[str, str]:
    """Executors of the local cluster: one per worker, of the worker's size, handed back when idle."""
    cores = settings.spark_worker_cores
    return {
        "spark.executor.cores": str(cores),
        "spark.executor.memory": settings.spark_worker_memory,
        "spark.cores.max": str(cores * settings.spark_workers),
        "spark.dynamicAllocation.enabled": "true",
        "spark.dynamicAllocation.shuffleTracking.enabled": "true",
        "spark.dynamicAllocation.minExecutors": str(min(min_executors, settings.spark_workers)),
        "spark.dynamicAllocation.maxExecutors": str(settings.spark_workers),
        "spark.dynamicAllocation.executorIdleTimeout": LOCAL_CLUSTER_IDLE_TIMEOUT,
        "spark.dynamicAllocation.cachedExecutorIdleTimeout": LOCAL_CLUSTER_IDLE_TIMEOUT,
        "spark.dynamicAllocation.shuffleTracking.timeout": LOCAL_CLUSTER_IDLE_TIMEOUT,
    }


def spark_conf(settings: Settings, app_name: str = "recsys", min_executors: int = 0) -> dict[str, Any]:
    """Every setting the platform's Spark sessions use; also the resource config for dagster-pyspark.

    On the local cluster a session keeps `min_executors` executors even when idle: a job that must
    answer within seconds cannot wait for an executor to start after a quiet spell.
    """
    jars = spark_jars(settings)
    local_dir = settings.data_dir / "spark" / "tmp"
    local_dir.mkdir(parents=True, exist_ok=True)
    master = settings.spark_master_url
    extra: dict[str, str] = {}
    if master == settings.local_spark_master and settings.spark_cluster_is_local:
        # The driver and the executors run on this machine: they read the provisioned jars in place.
        # Shipped as spark.jars, every executor would first fetch a copy into its work directory.
        classpath = ":".join(str(j) for j in jars)
        extra.update(
            _cluster_conf(settings, min_executors),
            **{"spark.driver.extraClassPath": classpath, "spark.executor.extraClassPath": classpath},
        )
    else:
        extra["spark.jars"] = ",".join(str(j) for j in jars)
    java_options = f"{JAVA_BLAS_ONLY} {settings.spark_java_options}".strip()
    code = project_path()
    if code:
        extra["spark.executorEnv.PYTHONPATH"] = code
    return {
        "spark.master": master,
        "spark.app.name": app_name,
        # Python workers must run this interpreter (the platform's venv), not whatever `python3` is.
        "spark.pyspark.python": sys.executable,
        "spark.pyspark.driver.python": sys.executable,
        "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
        "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
        "spark.driver.memory": settings.spark_driver_memory,
        "spark.sql.shuffle.partitions": str(settings.spark_shuffle_partitions),
        "spark.default.parallelism": str(settings.spark_shuffle_partitions),
        # Delta's VACUUM lists a table's files in this many tasks (Spark's default, 10,000, suits
        # a big cluster's partition discovery: here it made one VACUUM of a small table a minute).
        "spark.sql.sources.parallelPartitionDiscovery.parallelism": str(settings.spark_shuffle_partitions),
        "spark.sql.session.timeZone": "UTC",
        # Executors connect back to the driver at this address: loopback for the local cluster and
        # local mode, an address they reach when RECSYS_SPARK_MASTER is a cluster of other machines.
        "spark.driver.bindAddress": settings.spark_driver_host,
        "spark.driver.host": settings.spark_driver_host,
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        "spark.local.dir": str(local_dir),
        "spark.sql.warehouse.dir": str(settings.data_dir / "spark" / "warehouse"),
        "spark.databricks.delta.snapshotPartitions": "2",
        "spark.sql.streaming.checkpointLocation": str(settings.checkpoints_dir),
        "spark.driver.extraJavaOptions": f"-Xss16m -Dderby.system.home={settings.data_dir / 'spark'} {java_options}",
        "spark.executor.extraJavaOptions": java_options,
        **extra,
    }


def kafka_source_options(bootstrap_servers: str, topic: str) -> dict[str, str]:
    """The one way Spark reads a Kafka topic, batch or streaming (the speed layer, the sink, the batch layer).

    `failOnDataLoss=false`: records deleted by retention (or a re-created topic) before a reader got
    to them are gone whatever it does; failing would stop every later record too. Spark logs the
    skipped range.
    """
    return {
        "kafka.bootstrap.servers": bootstrap_servers,
        "subscribe": topic,
        "failOnDataLoss": "false",
        "kafka.request.timeout.ms": "10000",
        "kafka.default.api.timeout.ms": "20000",
    }


def prepare_driver_process(conf: Mapping[str, Any]) -> None:
    """The environment a driver's process needs before its SparkContext starts, for the session conf `conf`.

    A driver started from Python tells executors to run $PYSPARK_PYTHON, else `python3` from their
    PATH (spark.pyspark.python only reaches spark-submit): without it, tasks would run a Python
    without the project's dependencies whenever the venv is not on the worker's PATH.
    Without SPARK_LOCAL_IP the JVM looks up this machine's name, warns that it resolves to loopback
    and names another interface's address as the one it will use; the driver binds to its host.
    """
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    if "spark.driver.host" in conf:
        os.environ.setdefault("SPARK_LOCAL_IP", str(conf["spark.driver.host"]))


def get_spark(settings: Settings, app_name: str = "recsys", min_executors: int = 0) -> SparkSession:
    """Get or create the process's SparkSession, with the checkpoint directory ALS needs."""
    from pyspark.sql import SparkSession

    conf = spark_conf(settings, app_name, min_executors)
    prepare_driver_process(conf)
    builder = SparkSession.builder
    for key, value in conf.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    # Long ALS lineages overflow the stack without checkpoints.
    checkpoint_dir = settings.checkpoints_dir / "spark"
    checkpoint_dir.mkdir(parents=True, exist_ok=True)
    spark.sparkContext.setCheckpointDir(str(checkpoint_dir))
    return spark


def spark_master_state(settings: Settings, timeout: float = 3.0) -> dict[str, Any] | None:
    """The local standalone master's own account of itself and its workers (its web UI's /json/), or None."""
    url = f"http://127.0.0.1:{settings.spark_webui_port}/json/"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as answer:
            return json.loads(answer.read())
    except (OSError, urllib.error.URLError, ValueError):
        return None
