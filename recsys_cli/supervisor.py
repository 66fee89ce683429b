"""Run the platform's long-lived processes together: start, watch, restart on a crash, stop cleanly.

Each child runs in its own process group with its output in a log file, so Ctrl-C reaches only the
supervisor, which then stops the children in reverse order (SIGTERM, then SIGKILL after a grace
period) — the streaming job finishes its micro-batch, the API drains its requests.
"""

from __future__ import annotations

import time
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from recsys_stack.processes import ManagedProcess

MAX_RESTARTS = 3


@dataclass
class Child:
    """One of the platform's processes: how to start it, how to tell it is ready, how often it was restarted."""

    process: ManagedProcess
    argv: Sequence[str]
    env: dict[str, str] = field(default_factory=dict)
    ready_url: str | None = None
    restarts: int = 0

    @property
    def name(self) -> str:
        return self.process.name

    def start(self) -> None:
        self.process.start(self.argv, self.env)

    def running(self) -> bool:
        return self.process.pid() is not None

    def answers(self) -> bool:
        if self.ready_url is None:
            return self.running()
        try:
            with urllib.request.urlopen(self.ready_url, timeout=2) as response:
                return response.status < 500
        except OSError:
            return False


class Supervisor:
    def __init__(self, children: list[Child], say: Callable[[str], None]):
        self.children = children
        self.say = say
        self._stopping = False

    def start_all(self, ready_timeout: float = 180.0) -> None:
        for child in self.children:
            child.start()
            self.say(f"  {child.name:<18} started (pid {child.process.pid()}), log {child.process.log_file}")
        deadline = time.monotonic() + ready_timeout
        waiting = [c for c in self.children if c.ready_url]
        while waiting and time.monotonic() < deadline:
            for child in list(waiting):
                if not child.running():
                    raise RuntimeError(f"{child.name} exited during start-up:\n{child.process.log_tail()}")
                if child.answers():
                    self.say(f"  {child.name:<18} answers at {child.ready_url}")
                    waiting.remove(child)
            time.sleep(0.5)
        if waiting:
            names = ", ".join(c.name for c in waiting)
            raise RuntimeError(
                f"{names} did not answer within {ready_timeout:.0f}s:\n"
                + "\n".join(c.process.log_tail() for c in waiting)
            )

    def watch(self, until: Callable[[], bool]) -> None:
        """Restart crashed children (a few times) until `until()` says stop."""
        while not until():
            for child in self.children:
                if not child.running() and not self._stopping:
                    code = child.process.returncode
                    if child.restarts >= MAX_RESTARTS:
                        raise RuntimeError(
                            f"{child.name} keeps exiting (last code {code}):\n{child.process.log_tail()}"
                        )
                    child.restarts += 1
                    self.say(
                        f"  {child.name} exited with code {code}; restarting "
                        f"({child.restarts}/{MAX_RESTARTS}), log {child.process.log_file}"
                    )
                    child.start()
            time.sleep(1.0)

    def stop_all(self, grace: float = 30.0) -> None:
        self._stopping = True
        for child in reversed(self.children):
            pid = child.process.pid()
            if pid is not None:
                self.say(f"  stopping {child.name} (pid {pid})")
                child.process.stop(grace)
