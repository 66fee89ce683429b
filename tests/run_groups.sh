#!/usr/bin/env bash
# Runs the suite in groups, one pytest session each. Every session starts its own fresh test stack,
# so one area's events on the shared topics (the API's fuzzing, the simulator's histories) never
# reach another area's tests that read recsys.events from its start. Exit status: failed if any
# group failed; every group runs regardless, so one report shows everything.
set -u
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
groups=(
  "tests/test_settings.py tests/test_events.py tests/test_ranking.py tests/test_compose.py tests/test_stack.py"
  "tests/test_api_*.py"
  "tests/test_batch_*.py"
  "tests/test_stream_*.py"
  "tests/test_simulator*.py"
  "tests/test_storefront_browser.py tests/test_main_job.py"
)
# A test file no group names would silently never run: refuse instead.
# shellcheck disable=SC2086
covered=$(for group in "${groups[@]}"; do ls $group; done | sort -u)
missing=$(comm -23 <(ls tests/test_*.py | sort) <(echo "$covered"))
if [ -n "$missing" ]; then
  echo "tests/run_groups.sh: no group runs: $missing (add them to a group)" >&2
  exit 2
fi
status=0
for group in "${groups[@]}"; do
  echo "=== pytest ${group}"
  # shellcheck disable=SC2086  # the globs are meant to expand
  $PY -m pytest $group "$@" || status=1
done
exit $status
