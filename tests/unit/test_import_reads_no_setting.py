"""Importing the platform's modules reads no setting: the code location, its resources, the API and
the CLI read the RECSYS_* variables when they build their objects, and a bad value is named there."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# A fresh interpreter, so that every module's code runs on import; it prints what failed and why.
SCRIPT = """
import importlib, json, pkgutil

names = []
for package in ("recsys_assets", "streaming", "recsys_api", "recsys_cli"):
    names += [info.name for info in pkgutil.walk_packages(importlib.import_module(package).__path__, package + ".")]
for name in names:
    importlib.import_module(name)

from dagster import build_resources

from recsys_assets.definitions import defs
from recsys_assets.resources import build_resources as launch_resources
from recsys_core.settings import Settings

def failure(build):
    try:
        build()
    except Exception as error:
        while error.__cause__ is not None:  # Dagster wraps what a resource raised
            error = error.__cause__
        return f"{type(error).__name__}: {error}"

def start(resource):
    with build_resources({"resource": resource}):
        pass

failures = {"settings": failure(Settings.from_env), "definitions": failure(defs)}
failures.update({key: failure(lambda: start(resource)) for key, resource in launch_resources().items()})
print(json.dumps({"imported": names, "failures": failures}))
"""


def test_modules_import_with_a_bad_setting_and_what_reads_it_names_the_variable():
    env = {**os.environ, "RECSYS_KAFKA_PORT": "notaport", "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], env=env, cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.splitlines()[-1])
    modules = set(report["imported"])
    assert {"recsys_assets.definitions", "recsys_api.main", "recsys_cli.main", "streaming.job"} <= modules
    expected = "SettingsError: RECSYS_KAFKA_PORT='notaport' is invalid: expected a whole number"
    assert report["failures"] == {
        name: expected for name in ("settings", "definitions", "spark", "kafka", "mongo", "lake")
    }
