"""Run the platform's long-lived processes together: start, watch, restart on a crash, stop cleanly.

Each child runs in its own process group with its output in a log file, so Ctrl-C reaches only the
supervisor, which then stops the children in reverse order (SIGTERM, then SIGKILL after a grace
period) — the streaming job finishes its micro-batch, the API drains its requests.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

MAX_RESTARTS = 3


@dataclass
class Child:
    name: str
    argv: Sequence[str]
    log_file: Path
    env: dict[str, str] = field(default_factory=dict)
    ready_url: str | None = None
    proc: subprocess.Popen | None = None
    restarts: int = 0

    def start(self) -> None:
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_file, "ab")  # noqa: SIM115 - owned by the child for its lifetime
        log.write(f"\n=== {time.strftime('%Y-%m-%d %H:%M:%S')} starting {self.name}\n".encode())
        log.flush()
        self.proc = subprocess.Popen(list(self.argv), stdout=log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, env={**os.environ, **self.env},
                                     start_new_session=True)
        log.close()

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def answers(self) -> bool:
        if self.ready_url is None:
            return self.running()
        try:
            with urllib.request.urlopen(self.ready_url, timeout=2) as response:
                return response.status < 500
        except OSError:
            return False

    def stop(self, grace: float) -> None:
        if not self.running():
            return
        assert self.proc is not None
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        try:
            self.proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait()

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no output)"


class Supervisor:
    def __init__(self, children: list[Child], say: Callable[[str], None]):
        self.children = children
        self.say = say
        self._stopping = False

    def start_all(self, ready_timeout: float = 180.0) -> None:
        for child in self.children:
            child.start()
            self.say(f"  {child.name:<18} started (pid {child.pid}), log {child.log_file}")
        deadline = time.monotonic() + ready_timeout
        waiting = [c for c in self.children if c.ready_url]
        while waiting and time.monotonic() < deadline:
            for child in list(waiting):
                if not child.running():
                    raise RuntimeError(f"{child.name} exited during start-up:\n{child.log_tail()}")
                if child.answers():
                    self.say(f"  {child.name:<18} answers at {child.ready_url}")
                    waiting.remove(child)
            time.sleep(0.5)
        if waiting:
            names = ", ".join(c.name for c in waiting)
            raise RuntimeError(f"{names} did not answer within {ready_timeout:.0f}s:\n"
                               + "\n".join(c.log_tail() for c in waiting))

    def watch(self, until: Callable[[], bool]) -> None:
        """Restart crashed children (a few times) until `until()` says stop."""
        while not until():
            for child in self.children:
                if not child.running() and not self._stopping:
                    code = child.proc.returncode if child.proc else None
                    if child.restarts >= MAX_RESTARTS:
                        raise RuntimeError(f"{child.name} keeps exiting (last code {code}):\n{child.log_tail()}")
                    child.restarts += 1
                    self.say(f"  {child.name} exited with code {code}; restarting "
                             f"({child.restarts}/{MAX_RESTARTS}), log {child.log_file}")
                    child.start()
            time.sleep(1.0)

    def stop_all(self, grace: float = 30.0) -> None:
        self._stopping = True
        for child in reversed(self.children):
            if child.running():
                self.say(f"  stopping {child.name} (pid {child.pid})")
                child.stop(grace)
