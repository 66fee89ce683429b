"""The layering the README draws: who may import whom, and a domain free of server clients."""

from __future__ import annotations

import ast
import subprocess
import sys

import pytest

from tests.support import ROOT

# Each package and the project packages it may import (itself included).
MAY_IMPORT = {
    "recsys_core": {"recsys_core"},
    "recsys_io": {"recsys_core", "recsys_io"},
    "recsys_stack": {"recsys_core", "recsys_io", "recsys_stack"},
    "recsys_simulator": {"recsys_core", "recsys_io", "recsys_simulator"},
    "recsys_api": {"recsys_core", "recsys_io", "recsys_api"},
    "recsys_assets": {"recsys_core", "recsys_io", "recsys_assets"},
    "streaming": {"recsys_core", "recsys_io", "streaming"},
    "recsys_cli": set(),  # the composition root: everything
}
SERVER_CLIENTS = ("pymongo", "kafka", "confluent_kafka", "pyspark", "py4j", "litestar", "dagster", "uvicorn")


def imported_packages(package: str) -> dict[str, set[str]]:
    """Top-level names each module of `package` imports, by module path."""
    found = {}
    for path in sorted((ROOT / package).rglob("*.py")):
        names = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
        found[str(path.relative_to(ROOT))] = names
    return found


@pytest.mark.parametrize("package", sorted(p for p, allowed in MAY_IMPORT.items() if allowed))
def test_each_package_imports_only_the_layers_below_it(package):
    project = set(MAY_IMPORT)
    wrong = {
        module: sorted((names & project) - MAY_IMPORT[package])
        for module, names in imported_packages(package).items()
        if (names & project) - MAY_IMPORT[package]
    }
    assert wrong == {}, f"{package} may import only {sorted(MAY_IMPORT[package])}"


def test_the_domain_imports_no_server_client_not_even_indirectly():
    modules = sorted(
        path.relative_to(ROOT).with_suffix("").as_posix().replace("/", ".").removesuffix(".__init__")
        for path in (ROOT / "recsys_core").rglob("*.py")
    )
    code = (
        f"import importlib, sys\nfor m in {modules!r}: importlib.import_module(m)\n"
        f"print(sorted({{n.split('.')[0] for n in sys.modules}} & set({SERVER_CLIENTS!r})))"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]", f"recsys_core pulls in {result.stdout.strip()}"
