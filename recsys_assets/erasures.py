"""Erased shoppers out of the lake and the model files: the `erasures` asset.

Each run reads the `user_erasure` events landed since (recsys_core.erasure), records them in
the Delta table `erasures` by the SHA-256 of the id with the erasure's time (never the id), and
applies the new ones: a Delta DELETE (a MERGE on the id's hash, run by Spark) of the shopper's
rows up to the erasure in `events_landing`, `raw_events` and `quarantined_events`, and of
all their rows in the tables built from those (the next runs rebuild them from what is left);
the `user_index` and `user_factors` files of every model version are rewritten without them.
Then VACUUM removes the files the deletes left behind once they are older than
RECSYS_ERASURE_VACUUM_RETAIN_HOURS, and each table is checkpointed and its log before the
checkpoint deleted (`_forget_history`): the log's file statistics hold ids too.

raw_events depends on this asset and leaves out, when it rebuilds a day, the events of an erased
shopper up to their erasure (`without_erased`), so a re-run cannot bring them back.
"""

import json
import shutil
from functools import partial
from pathlib import Path

from dagster import AssetExecutionContext, MaterializeResult, asset
from dagster_pyspark import PySparkResource

from recsys_assets.records import RECORD_SCHEMA, validate_records
from recsys_assets.resources import LakeResource
from recsys_core.events import USER_ERASURE
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

_VALUE_USER = "trim(coalesce(get_json_object(t.value, '$.user_id'), get_json_object(t.value, '$.userid')))"
_VALUE_TS = "try_to_timestamp(coalesce(get_json_object(t.value, '$.ts'), get_json_object(t.value, '$.timestamp')))"
# recsys_core.erasure.erased_before in SQL: at or before the erasure (the erasure event itself
# too), or with no readable time.
_OLDER = "coalesce({ts} <= e.erased_at, true)"
_RECORD_CONDITION = f"sha2({_VALUE_USER}, 256) = e.user_hash AND {_OLDER.format(ts=_VALUE_TS)}"


def landed_erasures(session, lake: LakeResource):
    """DataFrame(user_hash, erased_at) of the user_erasure events in the landing table, validated
    by the platform's one validation (on the executors), the latest per shopper."""
    from pyspark.sql import functions as F

    if not lake.exists(LANDING_TABLE):
        return session.createDataFrame([], "user_hash string, erased_at timestamp")
    landed = (
        session.read.format("delta")
        .load(lake.table(LANDING_TABLE))
        .where(F.col("value").contains(USER_ERASURE))
        .select("topic", "partition", "offset", "value", F.unix_millis("kafka_ts").alias("kafka_ts_ms"))
    )
    validate = partial(validate_records, first_day=lake.events_first_day)
    records = session.createDataFrame(landed.rdd.mapPartitions(validate), RECORD_SCHEMA)
    return (
        records.where(F.col("valid") & (F.col("type") == USER_ERASURE))
        .groupBy(F.sha2("user_id", 256).alias("user_hash"))
        .agg(F.max(F.timestamp_millis("ts_ms")).alias("erased_at"))
    )


def recorded_erasures(session, lake: LakeResource):
    """The `erasures` table (empty with its columns before the first erasure)."""
    if lake.exists(ERASURES_TABLE):
        return session.read.format("delta").load(lake.table(ERASURES_TABLE))
    return session.createDataFrame([], "user_hash string, erased_at timestamp")


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
    for name in touched:
        _delete(session, lake.table(name), fresh, conditions[name])
        _forget_history(session, lake.table(name))
    return touched


def _delete(session, path: str, fresh, condition: str) -> None:
    from delta.tables import DeltaTable

    DeltaTable.forPath(session, path).alias("t").merge(fresh.alias("e"), condition).whenMatchedDelete().execute()


def _vacuum(session, path: str, retain_hours: int) -> None:
    """VACUUM with the setting's retention, Delta's safety check off for this call alone when it is below Delta's."""
    from delta.tables import DeltaTable

    check = "spark.databricks.delta.retentionDurationCheck.enabled"
    previous = session.conf.get(check, "true")
    session.conf.set(check, "false")
    try:
        DeltaTable.forPath(session, path).vacuum(float(retain_hours))
    finally:
        session.conf.set(check, previous)


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
    "model file, then VACUUM after RECSYS_ERASURE_VACUUM_RETAIN_HOURS.",
)
def erasures(context: AssetExecutionContext, spark: PySparkResource, lake: LakeResource) -> MaterializeResult:
    from pyspark.sql import functions as F

    session = spark.spark_session
    recorded = recorded_erasures(session, lake).cache()
    landed = landed_erasures(session, lake)
    # New: not recorded yet, or erased again since.
    fresh = (
        landed.alias("n")
        .join(recorded.alias("r"), "user_hash", "left")
        .where(F.col("r.erased_at").isNull() | (F.col("n.erased_at") > F.col("r.erased_at")))
        .select("user_hash", F.col("n.erased_at").alias("erased_at"))
        .cache()
    )
    n_fresh = fresh.count()
    touched = _apply(session, lake, fresh) if n_fresh else []
    model_files = _rewrite_model_files(session, lake.models_dir, fresh) if n_fresh else 0
    if n_fresh:
        # Recorded once applied: a run that fails before this point applies them again next time.
        every = recorded.unionByName(fresh).groupBy("user_hash").agg(F.max("erased_at").alias("erased_at"))
        every.write.format("delta").mode("overwrite").save(lake.table(ERASURES_TABLE))
    # Every run while erasures are recorded: files an erasure left behind go once past the retention.
    vacuumed = [name for name in ALL_TABLES if lake.exists(name)] if n_fresh or recorded.head(1) else []
    for name in vacuumed:
        _vacuum(session, lake.table(name), lake.erasure_vacuum_retain_hours)
    total = session.read.format("delta").load(lake.table(ERASURES_TABLE)).count() if lake.exists(ERASURES_TABLE) else 0
    fresh.unpersist()
    recorded.unpersist()
    context.log.info(f"{n_fresh} new erasures applied to {len(touched)} tables and {model_files} model files")
    return MaterializeResult(
        metadata={
            "new_erasures": n_fresh,
            "dagster/row_count": total,
            "tables": ", ".join(touched) or "none",
            "model_files_rewritten": model_files,
        }
    )
