"""One process abstraction for the stack's servers and `recsys run`'s children: start, find, restart, stop."""

from __future__ import annotations

import sys
import time

from recsys_cli.supervisor import Child, Supervisor
from recsys_stack.processes import ManagedProcess, _alive


def _within(seconds: float, condition) -> bool:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def test_a_crashing_child_is_restarted_a_few_times_then_reported_with_its_exit_code(tmp_path):
    crasher = Child(ManagedProcess("crasher", tmp_path), [sys.executable, "-c", "print('boom'); raise SystemExit(3)"])
    said: list[str] = []
    supervisor = Supervisor([crasher], said.append)
    supervisor.start_all()
    try:
        supervisor.watch(lambda: False)
    except RuntimeError as error:
        assert "crasher keeps exiting (last code 3)" in str(error) and "boom" in str(error)
    assert crasher.restarts == 3 and sum("exited with code 3" in line for line in said) == 3


def test_stopping_a_whole_group_stops_what_the_process_started_too(tmp_path):
    launcher = ManagedProcess("launcher", tmp_path, whole_group=True)
    launcher.start(
        [
            sys.executable,
            "-c",
            "import subprocess, time; print(subprocess.Popen(['sleep', '60']).pid, flush=True); time.sleep(60)",
        ]
    )
    assert _within(10, lambda: len(launcher.log_file.read_text().splitlines()) == 2)
    started = int(launcher.log_file.read_text().splitlines()[-1])
    assert launcher.stop(timeout=5) and launcher.pid() is None and not launcher.pid_file.exists()
    assert _within(5, lambda: not _alive(started))


def test_a_later_command_finds_a_server_by_its_pid_file_at_once_and_stops_it(tmp_path):
    # The stack's servers name their home on the command line: that is how a recycled pid is told
    # apart. Asked at once, before the new program's command line is readable, it is still found.
    for attempt in range(20):
        argv = [sys.executable, "-c", "import time; time.sleep(60)", str(tmp_path)]
        ManagedProcess(f"server{attempt}", tmp_path).start(argv)
        found = ManagedProcess(f"server{attempt}", tmp_path)
        assert found.pid() is not None and found.stop(timeout=5)
        assert ManagedProcess(f"server{attempt}", tmp_path).pid() is None
