"""Erased shoppers out of the lake and the model files: the `erasures` asset.

Each run reads the `user_erasure` events landed since (recsys_core.erasure), records them in
the Delta table `erasures` by the SHA-256 of the id with the erasure's time (never the id), and
applies the new ones: a Delta DELETE (a MERGE on the id's hash, run by Spark) of the shopper's
rows up to the erasure in `events_landing`, `raw_events` and `quarantined_events`, and of
all their rows in the tables built from those (the next runs rebuild them from what is left);
the `user_index` and `user_factors` files of every model version are rewritten without them.
Each table is checkpointed and its log before the checkpoint deleted (`_forget_history`): the
log's file statistics hold ids too. The files the deletes left behind go with VACUUM once they
are older than RECSYS_ERASURE_VACUUM_RETAIN_HOURS: the table records when each erasure was
applied and vacuumed, so the first run past an erasure's retention vacuums the lake, once, and
the runs in between vacuum nothing.

raw_events depends on this asset and leaves out, when it rebuilds a day, the events of an erased
shopper up to their erasure (`without_erased`), so a re-run cannot bring them back.
"""

import json
import shutil
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path

from dagster import AssetExecutionContext, MaterializeResult, asset
from dagster_pyspark import PySparkResource

from recsys_assets.records import RECORD_SCHEMA, validate_records
from recsys_assets.resources import LakeResource
from recsys_core.events import TS_FIELDS, USER_ERASURE, USER_ID_FIELDS
from recsys_core.settings import LANDING_TABLE

ERASURES_TABLE = "erasures"
# Tables with a `user_id` column: the event tables lose the rows up to the erasure (the same
# id coming back is a new shopper), the tables built from them every row of the shopper.
EVENT_TABLES = {"raw_events": "ts"}
BUILT_TABLES = ("orders", "interactions", "impressions", "clicks", "attributed_orders", "user_recommendations")
# Tables that hold the record as it came (`value`, JSON text, in either accepted format).
RECORD_TABLES = (LANDING_TABLE, "quarantined_events")
ALL_TABLES = (*RECORD_TABLES, *EVENT_TABLES, *BUILT_TABLES)
MODEL_USER_FILES = ("user_index", "user_factors")
# Tables changed at once: each change is a few small Spark jobs whose time is mostly scheduling,
# so a few at a time keep the executors busy.
TABLES_AT_ONCE = 3
RECORD_COLUMNS = "user_hash string, erased_at timestamp, applied_at timestamp, vacuumed_at timestamp"


def _first_of(fields: tuple[str, ...]) -> str:
    """SQL: the first of `fields` that the record's JSON `value` holds."""
    return "coalesce(" + ", ".join(f"get_json_object(t.value, '$.{field}')" for field in fields) + ")"


_VALUE_USER = f"trim({_first_of(USER_ID_FIELDS)})"
_VALUE_TS = f"try_to_timestamp({_first_of(TS_FIELDS)})"
# recsys_core.erasure.erased_before in SQL: at or before the erasure (the erasure event itself
# too), or with no readable time.
_OLDER = "coalesce({ts} <= e.erased_at, true)"
_RECORD_CONDITION = f"sha2({_VALUE_USER}, 256) = e.user_hash AND {_OLDER.format(ts=_VALUE_TS)}"


def landed_erasures(session, lake: LakeResource):
    """DataFrame(user_hash, erased_at) of the user_erasure events in the landing table, validated
    by the platform's one validation (on the executors), the latest per shopper; None when the
    table holds no candidate record at all."""
    from pyspark.sql import functions as F

    if not lake.exists(LANDING_TABLE):
        return None
    landed = (
        session.read.format("delta")
        .load(lake.table(LANDING_TABLE))
        .where(F.col("value").contains(USER_ERASURE))
        .select("topic", "partition", "offset", "value", F.unix_millis("kafka_ts").alias("kafka_ts_ms"))
    )
    # Most runs have no erasure at all: one scan that stops at the first candidate saves them the
    # Python validation's tasks and the aggregation below.
    if landed.isEmpty():
        return None
    validate = partial(validate_records, first_day=lake.events_first_day)
    records = session.createDataFrame(landed.rdd.mapPartitions(validate), RECORD_SCHEMA)
    return (
        records.where(F.col("valid") & (F.col("type") == USER_ERASURE))
        .groupBy(F.sha2("user_id", 256).alias("user_hash"))
        .agg(F.max(F.timestamp_millis("ts_ms")).alias("erased_at"))
    )


def recorded_erasures(session, lake: LakeResource):
    """The `erasures` table: (user_hash, erased_at, applied_at, vacuumed_at), empty with its columns
    before the first erasure. A table written before erasures kept `applied_at` and `vacuumed_at`
    reads as applied at the erasure and not vacuumed yet."""
    from pyspark.sql import functions as F

    if not lake.exists(ERASURES_TABLE):
        return session.createDataFrame([], RECORD_COLUMNS)
    table = session.read.format("delta").load(lake.table(ERASURES_TABLE))
    return table.select(
        "user_hash",
        "erased_at",
        F.col("applied_at") if "applied_at" in table.columns else F.col("erased_at").alias("applied_at"),
        F.col("vacuumed_at") if "vacuumed_at" in table.columns else F.lit(None).cast("timestamp").alias("vacuumed_at"),
    )


def without_erased(events, session, lake: LakeResource):
    """`events` (raw_events rows) without erasure events (the `erasures` table is their record) and
    without the events of erased shoppers up to their erasure."""
    from pyspark.sql import functions as F

    erased = F.broadcast(recorded_erasures(session, lake).alias("e"))
    kept = events.where(F.col("type") != USER_ERASURE).alias("t")
    return kept.join(
        erased,
        (F.sha2(F.col("t.user_id"), 256) == F.col("e.user_hash")) & F.expr(_OLDER.format(ts="t.ts")),
        "left_anti",
    )


def _apply(session, lake: LakeResource, fresh) -> list[str]:
    """Delete the `fresh` erasures' rows from every table that has them, and the log that names
    them; the tables changed."""
    conditions = {
        **dict.fromkeys(RECORD_TABLES, _RECORD_CONDITION),
        **{
            name: f"sha2(t.user_id, 256) = e.user_hash AND {_OLDER.format(ts=f't.{ts}')}"
            for name, ts in EVENT_TABLES.items()
        },
        **dict.fromkeys(BUILT_TABLES, "sha2(t.user_id, 256) = e.user_hash"),
    }
    touched = [name for name in conditions if lake.exists(name)]

    def erase_from(name: str) -> None:
        _delete(session, lake.table(name), fresh, conditions[name])
        _forget_history(session, lake.table(name))

    _each_table(erase_from, touched)
    return touched


def _each_table(work, names: list[str]) -> None:
    """`work(name)` for every table, TABLES_AT_ONCE at a time (Spark runs jobs of several threads side by side)."""
    with ThreadPoolExecutor(TABLES_AT_ONCE, thread_name_prefix="erasure") as pool:
        list(pool.map(work, names))


def _delete(session, path: str, fresh, condition: str) -> None:
    from delta.tables import DeltaTable

    DeltaTable.forPath(session, path).alias("t").merge(fresh.alias("e"), condition).whenMatchedDelete().execute()


# For these VACUUMs alone: Delta's safety check refuses a retention below Delta's own, and its
# logging writes a VACUUM START and a VACUUM END commit to every table, a third of a small
# table's VACUUM (docs/batch.md). The `erasures` table records when each erasure was vacuumed.
_VACUUM_CONF = {
    "spark.databricks.delta.retentionDurationCheck.enabled": "false",
    "spark.databricks.delta.vacuum.logging.enabled": "false",
}


def _vacuum(session, lake: LakeResource, names: list[str]) -> None:
    """VACUUM the tables with the setting's retention, with `_VACUUM_CONF`."""
    from delta.tables import DeltaTable

    hours = float(lake.erasure_vacuum_retain_hours)
    previous = {key: session.conf.get(key, None) for key in _VACUUM_CONF}
    for key, value in _VACUUM_CONF.items():
        session.conf.set(key, value)
    try:
        _each_table(lambda name: DeltaTable.forPath(session, lake.table(name)).vacuum(hours), names)
    finally:
        for key, value in previous.items():
            if value is None:
                session.conf.unset(key)
            else:
                session.conf.set(key, value)


def _forget_history(session, path: str) -> int:
    """Checkpoint the table, then delete its log entries before that checkpoint; the files deleted.

    The commits of a Delta table record each file's column statistics, whose min and max are
    values of the rows (an erased shopper's id among them), and Delta keeps them for
    `delta.logRetentionDuration` (30 days, counted from the next midnight). The checkpoint holds
    only the files alive now, so what is before it is what Delta's own log cleanup would delete
    later: time travel to a version before the erasure goes too, as VACUUM already took its files.
    """
    import re

    log = session._jvm.org.apache.spark.sql.delta.DeltaLog.forTable(session._jsparkSession, path)
    log.checkpoint()
    log_dir = Path(path) / "_delta_log"
    kept_from = json.loads((log_dir / "_last_checkpoint").read_text())["version"]
    deleted = 0
    for entry in log_dir.iterdir():
        versions = [int(v) for v in re.findall(r"\d{20}", entry.name)]
        if entry.is_file() and versions and max(versions) < kept_from:
            entry.unlink()
            deleted += 1
    return deleted


def _rewrite_model_files(session, models_dir: Path, fresh) -> int:
    """Every model version's per-shopper files without the erased shoppers; the directories rewritten."""
    from pyspark.sql import functions as F

    hashes = F.broadcast(fresh.select("user_hash"))
    rewritten = 0
    for files in _model_files(models_dir):
        kept = session.read.parquet(str(files)).join(hashes, F.sha2("id", 256) == F.col("user_hash"), "left_anti")
        staged = files.with_name(files.name + ".erasing")
        shutil.rmtree(staged, ignore_errors=True)
        kept.write.parquet(str(staged))
        shutil.rmtree(files)
        staged.rename(files)
        rewritten += 1
    return rewritten


def _model_files(models_dir: Path) -> list[Path]:
    return sorted(p for name in MODEL_USER_FILES for p in models_dir.glob(f"*/{name}") if p.is_dir())


@asset(
    group_name="ingest",
    deps=[LANDING_TABLE],
    description="Shoppers erased (DELETE /v1/users/{user_id}, `recsys erase`), by the SHA-256 of their id with "
    "the erasure's time, from the landed user_erasure events; each new one deleted from every lake table and "
    "model file; the first run past an erasure's RECSYS_ERASURE_VACUUM_RETAIN_HOURS VACUUMs the lake.",
)
def erasures(context: AssetExecutionContext, spark: PySparkResource, lake: LakeResource) -> MaterializeResult:
    from pyspark.sql import functions as F

    session = spark.spark_session
    now = F.lit(datetime.now(UTC))
    recorded = recorded_erasures(session, lake).cache()
    landed = landed_erasures(session, lake)
    # New: not recorded yet, or erased again since. This run's new erasures, a handful of (hash,
    # time) rows, are held as a local relation: the deletes below change events_landing, which
    # `landed` reads, so nothing may compute them again from it.
    new_rows = (
        []
        if landed is None
        else landed.alias("n")
        .join(recorded.alias("r"), "user_hash", "left")
        .where(F.col("r.erased_at").isNull() | (F.col("n.erased_at") > F.col("r.erased_at")))
        .select("user_hash", F.col("n.erased_at").alias("erased_at"))
        .collect()
    )
    fresh = session.createDataFrame(new_rows, "user_hash string, erased_at timestamp")
    n_fresh = len(new_rows)
    touched = _apply(session, lake, fresh) if n_fresh else []
    model_files = _rewrite_model_files(session, lake.models_dir, fresh) if n_fresh else 0
    applied = fresh.select(
        "user_hash", "erased_at", now.alias("applied_at"), F.lit(None).cast("timestamp").alias("vacuumed_at")
    )
    every = recorded.join(fresh, "user_hash", "left_anti").unionByName(applied)
    # Due: applied, not vacuumed since, and the files its deletes replaced are past the retention now.
    retention = timedelta(hours=lake.erasure_vacuum_retain_hours)
    due = F.col("vacuumed_at").isNull() & (F.col("applied_at") <= now - F.lit(retention))
    # Nothing recorded and nothing new (most shops, most days): nothing can be due, and no job asks.
    n_due = every.where(due).count() if n_fresh or lake.exists(ERASURES_TABLE) else 0
    vacuumed = [name for name in ALL_TABLES if lake.exists(name)] if n_due else []
    _vacuum(session, lake, vacuumed)
    if n_fresh or n_due:
        # Recorded once applied (and vacuumed): a run that fails before this point does it again next time.
        every = every.withColumn("vacuumed_at", F.when(due, now).otherwise(F.col("vacuumed_at")))
        every.write.format("delta").mode("overwrite").option("overwriteSchema", "true").save(lake.table(ERASURES_TABLE))
    total = session.read.format("delta").load(lake.table(ERASURES_TABLE)).count() if lake.exists(ERASURES_TABLE) else 0
    recorded.unpersist()
    context.log.info(f"{n_fresh} new erasures applied to {len(touched)} tables and {model_files} model files")
    return MaterializeResult(
        metadata={
            "new_erasures": n_fresh,
            "dagster/row_count": total,
            "tables": ", ".join(touched) or "none",
            "model_files_rewritten": model_files,
            "erasures_past_retention": n_due,
            "tables_vacuumed": len(vacuumed),
        }
    )
