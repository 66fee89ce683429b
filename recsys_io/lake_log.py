"""What a streaming query committed and what a Delta table gained, read from their files without Spark.

Sensors and checks run in the Dagster daemon, which starts no JVM: a Structured Streaming
checkpoint and a Delta log are plain files it can read.
"""

from __future__ import annotations

import json
from pathlib import Path


def committed_offsets(checkpoint: Path, topic: str) -> dict[int, int]:
    """The next offset per Kafka partition after the query's last committed micro-batch ({} before the first).

    `offsets/N` holds, on the lines after its version and metadata, each source's end offsets of batch
    N; `commits/N` exists once batch N is done.
    """
    commits = [int(p.name) for p in (checkpoint / "commits").glob("[0-9]*")] if checkpoint.is_dir() else []
    if not commits:
        return {}
    for line in (checkpoint / "offsets" / str(max(commits))).read_text().splitlines()[2:]:
        source = json.loads(line)
        if isinstance(source, dict) and topic in source:
            return {int(p): int(o) for p, o in source[topic].items()}
    return {}


def delta_version(table: Path) -> int | None:
    """The table's latest commit version, or None when it has none."""
    versions = [int(p.stem) for p in (table / "_delta_log").glob("*.json") if p.stem.isdigit()]
    return max(versions) if versions else None


def rows_of_last_write(table: Path) -> int | None:
    """`numOutputRows` of the table's latest commit when that commit is a write that recorded it (an
    overwrite's figure is then the rows the table holds), else None."""
    latest = delta_version(table)
    if latest is None:
        return None
    for line in (table / "_delta_log" / f"{latest:020d}.json").read_text().splitlines():
        info = json.loads(line).get("commitInfo") if line.strip() else None
        if info is not None and info.get("operation") == "WRITE":
            rows = info.get("operationMetrics", {}).get("numOutputRows")
            return int(rows) if rows is not None else None
    return None


def days_added(table: Path, after: int | None, column: str = "day") -> tuple[int | None, set[str]]:
    """(latest version, values of the partition `column` that gained files in the commits after `after`)."""
    latest = delta_version(table)
    days: set[str] = set()
    if latest is None:
        return None, days
    for version in range(-1 if after is None else after, latest):
        path = table / "_delta_log" / f"{version + 1:020d}.json"
        if not path.exists():  # cleaned up by Delta's log retention: nothing to learn from it any more
            continue
        for line in path.read_text().splitlines():
            added = json.loads(line).get("add") if line.strip() else None
            if added and added.get("partitionValues", {}).get(column):
                days.add(added["partitionValues"][column])
    return latest, days
