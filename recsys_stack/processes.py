"""Processes the platform starts and stops itself (the stack's servers, `recsys run`'s children): pid files,
logs, ports."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(eq=False)
class ManagedProcess:
    """A process known by name, in a session of its own, its output appended to a log file.

    Its pid file (under `home`/run) lets a later command find and stop it (`recsys stack down`);
    the interpreter that started it also keeps its `Popen`, so it can tell the exit code. With
    `whole_group`, stopping signals its process group: a launcher whose children (the JVM of
    `recsys stream`, uvicorn's workers) must not outlive it. A server is signalled alone, so it
    shuts its own children down in order.
    """

    name: str
    home: Path
    whole_group: bool = False
    stop_signal: int = signal.SIGTERM
    _popen: subprocess.Popen | None = field(default=None, init=False, repr=False)

    @property
    def pid_file(self) -> Path:
        return self.home / "run" / f"{self.name}.pid"

    @property
    def log_file(self) -> Path:
        return self.home / "logs" / f"{self.name}.log"

    @property
    def returncode(self) -> int | None:
        """The exit code of the process this object started, once it has exited."""
        return self._popen.poll() if self._popen is not None else None

    def pid(self) -> int | None:
        """The pid of our process if it is still alive (a stale pid file is removed)."""
        if self._popen is not None:
            if self._popen.poll() is None:
                return self._popen.pid
            self.pid_file.unlink(missing_ok=True)
            return None
        try:
            pid = int(self.pid_file.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None
        if _alive(pid) and self._is_ours(pid):
            return pid
        self.pid_file.unlink(missing_ok=True)
        return None

    def _is_ours(self, pid: int) -> bool:
        # A recycled pid must never be mistaken for our server: the command line names our stack.
        # Just after a start it reads empty for a few milliseconds (Popen returns once the exec
        # began, before the kernel set up the new program's arguments): wait for it then.
        deadline = time.monotonic() + 2.0
        while True:
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
            except OSError:
                return True  # no /proc (not Linux): trust the pid file
            if cmdline or time.monotonic() > deadline:
                return str(self.home).encode() in cmdline
            time.sleep(0.01)

    def start(
        self, argv: Sequence[str], env: dict[str, str] | None = None, cwd: Path | None = None, user: str | None = None
    ) -> int:
        self.pid_file.parent.mkdir(parents=True, exist_ok=True)
        self._log_line(f"starting {self.name}")
        with open(self.log_file, "ab") as log:
            self._popen = subprocess.Popen(
                list(argv),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=cwd,
                env={**os.environ, **(env or {})},
                start_new_session=True,  # Ctrl-C in the terminal must not reach it, only its starter
                user=user,
            )
        self.pid_file.write_text(str(self._popen.pid))
        return self._popen.pid

    def stop(self, timeout: float = 30.0) -> bool:
        """`stop_signal`, then SIGKILL after `timeout`. Returns whether a process was stopped."""
        pid = self.pid()
        if pid is None:
            return False
        self._log_line(f"stopping {self.name} (pid {pid}) on request of pid {os.getpid()}: " + " ".join(sys.argv))
        self._signal(pid, self.stop_signal)
        if not self._exited(pid, timeout):
            self._signal(pid, signal.SIGKILL)
            self._exited(pid, None)
        self.pid_file.unlink(missing_ok=True)
        return True

    def _signal(self, pid: int, sig: int) -> None:
        try:
            if self.whole_group:
                os.killpg(pid, sig)  # its own session: the group has the process's pid
            else:
                os.kill(pid, sig)
        except ProcessLookupError:
            pass  # exited meanwhile

    def _exited(self, pid: int, timeout: float | None) -> bool:
        if self._popen is not None:
            try:
                self._popen.wait(timeout)
                return True
            except subprocess.TimeoutExpired:
                return False
        deadline = None if timeout is None else time.monotonic() + timeout
        while _alive(pid):
            if deadline is not None and time.monotonic() >= deadline:
                return False
            time.sleep(0.1)
        return True

    def _log_line(self, text: str) -> None:
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_file, "a") as log:
            log.write(f"=== {time.strftime('%Y-%m-%d %H:%M:%S')} {text}\n")

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_file.read_text(errors="replace")
        except FileNotFoundError:
            return "(no log yet)"
        return "\n".join(text.splitlines()[-lines:])


def _alive(pid: int) -> bool:
    try:
        waited, _ = os.waitpid(pid, os.WNOHANG)  # reap our own exited children
        if waited == pid:
            return False
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie is not alive
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        return state != "Z"
    except (OSError, IndexError):
        return True


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True
