"""The one SparkSession builder: Delta + Kafka jars from the provisioned directory, sized for 2 cores.

pyspark is imported inside the functions so that importing recsys_core never starts a JVM.
"""

from __future__ import annotations

import sys
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


def spark_conf(settings: Settings, app_name: str = "recsys") -> dict[str, Any]:
    """Every setting the platform's Spark sessions use; also the resource config for dagster-pyspark."""
    jars = ",".join(str(j) for j in spark_jars(settings))
    local_dir = settings.data_dir / "spark" / "tmp"
    local_dir.mkdir(parents=True, exist_ok=True)
    return {
        "spark.master": settings.spark_master,
        "spark.app.name": app_name,
        # Python workers must run this interpreter (the platform's venv), not whatever `python3` is.
        "spark.pyspark.python": sys.executable,
        "spark.pyspark.driver.python": sys.executable,
        "spark.jars": jars,
        "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
        "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
        "spark.driver.memory": settings.spark_driver_memory,
        "spark.sql.shuffle.partitions": str(settings.spark_shuffle_partitions),
        "spark.default.parallelism": str(settings.spark_shuffle_partitions),
        "spark.sql.session.timeZone": "UTC",
        "spark.driver.bindAddress": "127.0.0.1",
        "spark.driver.host": "127.0.0.1",
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        "spark.local.dir": str(local_dir),
        "spark.sql.warehouse.dir": str(settings.data_dir / "spark" / "warehouse"),
        "spark.databricks.delta.snapshotPartitions": "2",
        "spark.sql.streaming.checkpointLocation": str(settings.checkpoints_dir),
        "spark.driver.extraJavaOptions": f"-Xss16m -Dderby.system.home={settings.data_dir / 'spark'} {JAVA_BLAS_ONLY}",
        "spark.executor.extraJavaOptions": JAVA_BLAS_ONLY,
    }


def get_spark(settings: Settings, app_name: str = "recsys") -> SparkSession:
    """Get or create the process's SparkSession, with the checkpoint directory ALS needs."""
    from pyspark.sql import SparkSession

    builder = SparkSession.builder
    for key, value in spark_conf(settings, app_name).items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    # Long ALS lineages overflow the stack without checkpoints.
    checkpoint_dir = settings.checkpoints_dir / "spark"
    checkpoint_dir.mkdir(parents=True, exist_ok=True)
    spark.sparkContext.setCheckpointDir(str(checkpoint_dir))
    return spark
