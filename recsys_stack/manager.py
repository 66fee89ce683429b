"""`recsys stack up|down|status|logs`: the local stack, idempotent and honest about failures."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass

from recsys_core.errors import RecsysError
from recsys_core.settings import Settings
from recsys_io.kafka import ensure_topics
from recsys_io.mongo import ensure_indexes
from recsys_stack import provision
from recsys_stack.processes import ManagedProcess, port_is_free
from recsys_stack.servers import Server, servers


class StackError(RecsysError):
    pass


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@dataclass
class ComponentStatus:
    name: str
    address: str
    pid: int | None
    managed: bool
    answers: bool
    detail: str = ""


def provision_all(settings: Settings) -> None:
    """Everything the stack and Spark need, fetched once (a no-op when already there)."""
    for server in servers(settings):
        if server.is_local:
            server.provision()
    provision.provision_spark_jars(settings)


def _wait_ready(server: Server, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.answers():
            return
        if server.is_local and server.process.pid() is None:
            raise StackError(
                f"{server.name} exited during start-up. Last lines of "
                f"{server.process.log_file}:\n{server.process.log_tail()}"
            )
        time.sleep(0.5)
    raise StackError(
        f"{server.name} did not answer at {server.address} within {timeout:.0f}s "
        f"(RECSYS_READY_TIMEOUT_SECONDS). Last lines of {server.process.log_file}:\n"
        f"{server.process.log_tail()}"
    )


def _start(server: Server, settings: Settings) -> None:
    pid = server.process.pid()
    if pid is not None:
        say(f"  {server.name}: already running (pid {pid})")
        _wait_ready(server, settings.ready_timeout_seconds)
        return
    for port in server.ports:
        if not port_is_free(port):
            raise StackError(
                f"port {port} is already taken by another process, so the local {server.name} cannot "
                f"start. Free it, or set {server.port_variable if port == server.ports[0] else 'the port variables'}"
                f" to a free port (see `recsys stack --help`)."
            )
    started = time.monotonic()
    pid = server.start()
    say(f"  {server.name}: started (pid {pid}), waiting for it to answer at {server.address} ...")
    try:
        _wait_ready(server, settings.ready_timeout_seconds)
    except StackError:
        server.process.stop(timeout=5)
        raise
    say(f"  {server.name}: ready in {time.monotonic() - started:.1f}s")


def up(settings: Settings) -> list[ComponentStatus]:
    for sub in ("lake", "models", "checkpoints", "stack"):
        (settings.data_dir / sub).mkdir(parents=True, exist_ok=True)
    say(f"recsys stack: data in {settings.data_dir}")
    provision_all(settings)
    for server in servers(settings):
        if server.is_local:
            _start(server, settings)
        else:
            say(f"  {server.name}: external at {server.address}, not started here")
            _wait_ready(server, settings.ready_timeout_seconds)
    created = ensure_topics(settings)
    if created:
        say(f"  kafka: created topics {', '.join(created)}")
    ensure_indexes(settings)
    return status(settings)


def down(settings: Settings) -> list[str]:
    stopped = []
    known = servers(settings)
    # What an `up` with other settings started (more Spark workers, say) has a pid file too: stop it first.
    started = {pid_file.stem for pid_file in (settings.stack_dir / "run").glob("*.pid")}
    for name in sorted(started - {server.name for server in known}, reverse=True):
        if ManagedProcess(name, settings.stack_dir).stop():
            stopped.append(name)
            say(f"  {name}: stopped")
    for server in reversed(known):
        if server.stop():
            stopped.append(server.name)
            say(f"  {server.name}: stopped")
        else:
            say(f"  {server.name}: not running (nothing to stop)")
    return stopped


def status(settings: Settings) -> list[ComponentStatus]:
    result = []
    for server in servers(settings):
        result.append(
            ComponentStatus(
                server.name, server.address, server.process.pid(), server.is_local, server.answers(), server.kind
            )
        )
    jars = list(settings.spark_jars_dir.glob("*.jar"))
    result.append(
        ComponentStatus(
            "spark-jars",
            str(settings.spark_jars_dir),
            None,
            True,
            bool(jars),
            f"{len(jars)} jars (Delta, Kafka connector)",
        )
    )
    return result


def format_status(rows: list[ComponentStatus]) -> str:
    lines = [f"{'component':<15} {'state':<9} {'pid':<8} {'address':<34} detail"]
    for row in rows:
        state = "up" if row.answers else "down"
        if row.name == "spark-jars":
            state = "ready" if row.answers else "missing"
        pid = str(row.pid) if row.pid else ("external" if not row.managed else "-")
        lines.append(f"{row.name:<15} {state:<9} {pid:<8} {row.address:<34} {row.detail}")
    return "\n".join(lines)


def component(settings: Settings, name: str) -> Server:
    for server in servers(settings):
        if server.name == name:
            return server
    names = ", ".join(s.name for s in servers(settings))
    raise StackError(f"unknown component {name!r}; choose one of: {names}")
