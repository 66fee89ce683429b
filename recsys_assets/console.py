"""A readable console for runs started from the command line (`recsys materialize`).

Dagster's default console logger prints every engine event at DEBUG, and Spark's drivers warn
about things a user cannot act on. `concise_console` prints one line per finished step (its
assets, duration and row counts or headline numbers), each check result, the assets' own
progress messages, and errors in full. `quiet_spark_conf` starts Spark's driver with a log4j
configuration that drops the warnings expected on this platform. The UI keeps every event either way.
"""

from __future__ import annotations

import logging
import sys
from numbers import Number
from pathlib import Path

from dagster import DagsterEventType, JsonMetadataValue, MarkdownMetadataValue, logger

QUIET_LOG4J = Path(__file__).with_name("spark-quiet-log4j2.properties")
HEADLINE_LIMIT = 4


def quiet_spark_conf(conf: dict[str, str]) -> dict[str, str]:
    """`conf` with the driver logging through QUIET_LOG4J (it applies to a session started with it)."""
    options = f"{conf.get('spark.driver.extraJavaOptions', '')} -Dlog4j2.configurationFile={QUIET_LOG4J.as_uri()}"
    return {**conf, "spark.driver.extraJavaOptions": options.strip()}


def _headline(metadata: dict) -> str:
    """'1,234 rows' or the first few plain numbers and short texts of an asset's metadata."""
    values = {
        k: getattr(v, "value", v)
        for k, v in metadata.items()
        if not isinstance(v, MarkdownMetadataValue | JsonMetadataValue)
    }
    if "dagster/row_count" in values:
        return f"{values['dagster/row_count']:,} rows"
    plain = [
        f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}"
        for k, v in values.items()
        if isinstance(v, Number | str) and not isinstance(v, bool) and len(str(v)) <= 40 and k != "path"
    ]
    return ", ".join(plain[:HEADLINE_LIMIT])


class ConciseHandler(logging.Handler):
    """Turns Dagster's log records into the lines above, keeping per-step materialisations until the step ends."""

    def __init__(self, stream=None):
        super().__init__()
        self.stream = stream or sys.stderr
        self.materialized: dict[str, list[str]] = {}
        self.checked: set[str] = set()

    def _write(self, line: str) -> None:
        self.stream.write(line + "\n")
        self.stream.flush()

    def emit(self, record: logging.LogRecord) -> None:
        meta = getattr(record, "dagster_meta", None) or {}
        event = meta.get("dagster_event")
        step = meta.get("step_key") or ""
        if event is None:  # the assets' own messages
            if record.levelno >= logging.INFO:
                level = "" if record.levelno == logging.INFO else f"{record.levelname.lower()}: "
                self._write(f"      {step}: {level}{meta.get('orig_message', record.getMessage())}")
            return
        kind, data = event.event_type, event.event_specific_data
        if kind == DagsterEventType.ASSET_MATERIALIZATION:
            materialization = data.materialization
            summary = _headline(dict(materialization.metadata))
            # A ranged run records one materialisation per day with the same figures: show them once.
            lines = self.materialized.setdefault(step, [])
            line = materialization.asset_key.to_user_string() + (f" ({summary})" if summary else "")
            if line not in lines:
                lines.append(line)
        elif kind == DagsterEventType.STEP_SUCCESS:
            assets = self.materialized.pop(step, [])
            if assets or step not in self.checked:  # a step that only ran checks said all in their lines
                self._write(f"    ok   {'; '.join(assets) or step}  [{data.duration_ms / 1000:.1f} s]")
        elif kind == DagsterEventType.ASSET_CHECK_EVALUATION:
            self.checked.add(step)
            figures = _headline({k: v for k, v in data.metadata.items() if k != "version"})
            verdict = "passed" if data.passed else f"FAILED ({data.severity.value.lower()})"
            self._write(
                f"    check {data.check_name} on {data.asset_key.to_user_string()}: {verdict}"
                + (f"  {figures}" if figures else "")
            )
        elif kind == DagsterEventType.STEP_FAILURE:
            error = data.error.to_string() if data.error else event.message
            self._write(f"    FAIL {step}\n{error}")
        elif kind == DagsterEventType.STEP_SKIPPED:
            self._write(f"    skip {step} (an upstream step failed or a blocking check did not pass)")
        elif record.levelno >= logging.WARNING:
            self._write(f"    {record.levelname.lower()}: {event.message or record.getMessage()}")


@logger(description="One line per step, check results and errors in full (for `recsys materialize`).")
def concise_console(_init_context) -> logging.Logger:
    log = logging.Logger("recsys.materialize", level=logging.DEBUG)
    log.addHandler(ConciseHandler())
    return log
