"""recsys_io.lake_log.rows_of_last_write on Delta log files written by hand: no Spark."""

from __future__ import annotations

import json

from recsys_io.lake_log import rows_of_last_write


def _commit(table, version: int, info: dict) -> None:
    log = table / "_delta_log"
    log.mkdir(parents=True, exist_ok=True)
    lines = [{"add": {"path": f"part-{version}.parquet"}}, {"commitInfo": info}]
    (log / f"{version:020d}.json").write_text("\n".join(json.dumps(line) for line in lines) + "\n")


def test_the_latest_writes_output_rows_are_the_figure(tmp_path):
    _commit(tmp_path, 0, {"operation": "WRITE", "operationMetrics": {"numOutputRows": "50"}})
    _commit(tmp_path, 1, {"operation": "WRITE", "operationMetrics": {"numOutputRows": "7"}})
    assert rows_of_last_write(tmp_path) == 7


def test_no_figure_without_a_log_a_write_or_its_metrics(tmp_path):
    assert rows_of_last_write(tmp_path) is None
    _commit(tmp_path, 0, {"operation": "WRITE", "operationMetrics": {"numOutputRows": "50"}})
    _commit(tmp_path, 1, {"operation": "VACUUM END", "operationMetrics": {"numDeletedFiles": "3"}})
    assert rows_of_last_write(tmp_path) is None
    _commit(tmp_path, 2, {"operation": "WRITE"})
    assert rows_of_last_write(tmp_path) is None
