"""docker-compose.yml and the Dockerfile describe the same platform the local stack runs.

No Docker engine runs here, so the files are checked for what would break at `docker compose up`:
commands that name no entry point of the project, settings the platform does not read, missing files.
"""

from __future__ import annotations

import re
import shutil
import sys
from pathlib import Path

import pytest
import typer.main
import yaml

from recsys_cli.main import app
from recsys_core.settings import Settings
from tests.support import ROOT  # noqa: E402

COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]
OWN_SERVICES = {name: s for name, s in SERVICES.items() if "build" in s}


def test_compose_runs_the_servers_dagster_streaming_and_api():
    assert {"kafka", "mongo", "dagster-postgres", "dagster-webserver", "dagster-daemon", "streaming", "api"} <= set(
        SERVICES
    )
    assert SERVICES["kafka"]["image"].startswith("apache/kafka:")
    assert SERVICES["mongo"]["image"] == "mongo:8"


@pytest.mark.parametrize("name", sorted(OWN_SERVICES))
def test_each_service_command_names_an_existing_entry_point(name):
    command = OWN_SERVICES[name]["command"]
    program = command[0]
    if program == "recsys":
        group = typer.main.get_command(app)
        words = [w for w in command[1:] if not w.startswith("-")]
        node = group
        for word in words:
            if not hasattr(node, "commands"):
                break  # the rest are arguments of a leaf command
            assert word in node.commands, f"`recsys {' '.join(command[1:])}`: no command {word!r}"
            node = node.commands[word]
        options = [w for w in command[1:] if w.startswith("--")]
        known = {opt for param in node.params for opt in param.opts}
        assert set(options) <= known, f"{name}: unknown options {set(options) - known}"
    else:
        assert shutil.which(program, path=str(Path(sys.executable).parent)), f"{program} is not installed"
    if "-w" in command:
        assert (ROOT / command[command.index("-w") + 1]).exists()


def test_every_recsys_variable_set_in_compose_is_read_by_the_settings():
    known = {var.env for var in Settings.variables()}
    for name, service in SERVICES.items():
        for variable in service.get("environment", {}):
            if variable.startswith("RECSYS_"):
                assert variable in known, f"{name} sets {variable}, which the settings do not read"


def test_dockerfile_copies_files_that_exist_and_sets_only_known_variables():
    dockerfile = (ROOT / "Dockerfile").read_text()
    for line in dockerfile.splitlines():
        if line.startswith("COPY"):
            for source in line.split()[1:-1]:
                assert (ROOT / source).exists(), f"Dockerfile copies missing {source}"
    known = {var.env for var in Settings.variables()}
    assert set(re.findall(r"\b(RECSYS_[A-Z_]+)=", dockerfile)) <= known
