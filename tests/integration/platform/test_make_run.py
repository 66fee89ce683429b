"""`make run` itself: everything comes up and answers, Ctrl-C stops every process it started.

The run gets a data dir and ports of its own (the suite's stack keeps running beside it) and a
small store, so the whole platform — stack, history, materialisation, Dagster, streaming, API and
live traffic — fits in a few minutes on two cores.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from tests.support import ROOT
from tests.support.batch import model_config


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _processes_with(marker: str) -> list[int]:
    """Pids whose environment carries our data dir: everything `make run` started inherits it."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if marker.encode() in (entry / "environ").read_bytes():
                state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
                if state != "Z":
                    found.append(int(entry.name))
        except OSError:
            continue
    return found


def _get(url: str) -> int:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.status


def _start_make_run(env: dict[str, str], config: Path, log: Path) -> tuple[subprocess.Popen, str, float]:
    started = time.monotonic()
    args = f"--days 2 --users 80 --products 40 --categories 4 --live-rate 5 --materialize-config {config}"
    proc = subprocess.Popen(
        ["make", "--no-print-directory", "run", f"RUN_ARGS={args}"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    output = []
    deadline = time.monotonic() + 1200
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        output.append(line)
        if line.startswith("recsys is running"):
            # keep draining in the background so the pipe never fills
            import threading

            threading.Thread(target=lambda: [output.append(x) for x in proc.stdout], daemon=True).start()
            time.sleep(1)
            log.write_text("".join(output))
            return proc, "".join(output), time.monotonic() - started
    log.write_text("".join(output))
    proc.kill()
    pytest.fail("make run never said it was running:\n" + "".join(output[-60:]))


def _ctrl_c(proc: subprocess.Popen, marker: str) -> int:
    """What a terminal's Ctrl-C does: SIGINT to the whole foreground group; then wait for the
    graceful stop (the streaming job finishes its batch) and return make's exit code."""
    os.killpg(proc.pid, signal.SIGINT)
    code = proc.wait(timeout=300)
    deadline = time.monotonic() + 180
    while _processes_with(marker) and time.monotonic() < deadline:
        time.sleep(1)
    return code


def test_make_run_comes_up_answers_and_ctrl_c_leaves_nothing_running(stack, tmp_path):
    kafka, controller, mongo, api, dagster = _free_ports(5)
    data_dir = tmp_path / "platform"
    env = {
        **os.environ,
        "RECSYS_DATA_DIR": str(data_dir),
        "RECSYS_KAFKA_PORT": str(kafka),
        "RECSYS_KAFKA_CONTROLLER_PORT": str(controller),
        "RECSYS_MONGO_PORT": str(mongo),
        "RECSYS_API_PORT": str(api),
        "RECSYS_DAGSTER_PORT": str(dagster),
        # `make run` as a new user has it: Spark in-process (the rest of the suite runs on the cluster).
        "RECSYS_SPARK_WORKERS": "0",
    }
    config = tmp_path / "small-search.json"
    config.write_text(json.dumps(model_config()))  # the search is the batch tests' business

    proc, output, _ = _start_make_run(env, config, tmp_path / "first-run.log")
    try:
        key = re.search(r"API key\s+(\S+)", output).group(1)
        assert f"http://127.0.0.1:{api}/demo#key={key}" in output
        assert f"http://127.0.0.1:{dagster}" in output
        assert _get(f"http://127.0.0.1:{api}/ready") == 200
        assert _get(f"http://127.0.0.1:{api}/demo") == 200
        assert _get(f"http://127.0.0.1:{dagster}/server_info") == 200
        assert len(_processes_with(str(data_dir))) >= 7  # kafka, mongo, 2×dagster, stream, api, traffic
    finally:
        code = _ctrl_c(proc, str(data_dir))
    assert code in (0, 2, 130, -signal.SIGINT), f"make run exited with {code}"
    assert _processes_with(str(data_dir)) == []

    # A second run reuses the stack's data, the store and the model: no seeding, no materialisation.
    proc, output, seconds = _start_make_run(env, config, tmp_path / "second-run.log")
    try:
        assert "already loaded" in output and "skipping the initial materialisation" in output, output
        print(f"second make run was up in {seconds:.0f}s")  # how fast is the benchmarks' business, not a test's
    finally:
        _ctrl_c(proc, str(data_dir))
    assert _processes_with(str(data_dir)) == []
