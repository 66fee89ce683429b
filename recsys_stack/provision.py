"""One-time provisioning of what the local stack runs: Kafka and Spark jars (Maven), FerretDB (Go).

Each step writes into a temporary directory and renames it into place only when it finished, with a
stamp of its inputs, so an interrupted run is redone cleanly next time and a finished one is skipped.
Maven's and Go's own caches make a redo fast. Nothing here runs at serving time.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from importlib import resources
from pathlib import Path

from recsys_core.errors import RecsysError
from recsys_core.settings import Settings

FERRETDB_MODULE = "github.com/FerretDB/FerretDB"
FERRETDB_VERSION = "v1.24.2"
# Fixes to FerretDB, as unified diffs applied in order to a copy of its module's source. Each
# patch file says what upstream does wrong and adds Go tests of its behaviour, which run before
# the build (recsys_stack/ferretdb/README.md lists them).
FERRETDB_PATCHES = "ferretdb/patches"
FERRETDB_TESTED_PACKAGES = [
    "./internal/backends/sqlite/",
    "./internal/handler/",
    "./internal/handler/sjson/",
    "./internal/util/resource/",
]
# Packages whose other tests need a live server: only the tests matching the pattern run.
FERRETDB_TESTED_BY_PATTERN = {"./internal/backends/postgresql/": "^TestPrepare"}
STAMP = ".provisioned"

INSTALL_HINTS = {
    "java": "install a JDK 17+ (Debian/Ubuntu: apt-get install openjdk-17-jdk-headless)",
    "mvn": "install Apache Maven 3.8+ (Debian/Ubuntu: apt-get install maven)",
    "go": "install Go 1.22+ (https://go.dev/doc/install or apt-get install golang)",
    "git": "install git (Debian/Ubuntu: apt-get install git)",
    "postgres": "install PostgreSQL 15 (`make postgres`, or on Debian/Ubuntu: apt-get install postgresql-15)",
}


class ProvisionError(RecsysError):
    pass


def require_tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise ProvisionError(f"`{name}` was not found on PATH: {INSTALL_HINTS[name]}.")
    return path


def postgres_bin_dir() -> Path:
    """Where PostgreSQL's server programs are: beside `postgres` on PATH, else Debian's newest.

    Debian keeps `postgres` and `initdb` off PATH, under /usr/lib/postgresql/<major>/bin; the
    programs of one directory are used together so that they are of one version.
    """
    on_path = shutil.which("postgres")
    if on_path:
        return Path(on_path).resolve().parent
    found = [p.parent for p in Path("/usr/lib/postgresql").glob("*/bin/postgres") if p.parent.parent.name.isdigit()]
    if not found:
        raise ProvisionError(
            "PostgreSQL was not found (no `postgres` on PATH nor in /usr/lib/postgresql), and "
            f"RECSYS_FERRETDB_BACKEND=postgresql runs FerretDB on it: {INSTALL_HINTS['postgres']}."
        )
    return max(found, key=lambda bin_dir: int(bin_dir.parent.name))


def maven_file(name: str) -> Path:
    return Path(str(resources.files("recsys_stack") / "maven" / name))


def _stamp_of(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()


def _is_provisioned(target: Path, stamp: str) -> bool:
    try:
        return (target / STAMP).read_text() == stamp
    except FileNotFoundError:
        return False


def _run_with_progress(
    argv: list[str],
    label: str,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    count: Callable[[str], bool] | None = None,
) -> None:
    """Run a build tool, showing one live line of progress; on failure show its output's tail."""
    started = time.monotonic()
    interactive = sys.stderr.isatty()
    proc = subprocess.Popen(
        argv,
        cwd=cwd,
        env={**os.environ, **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        bufsize=1,
    )
    tail: list[str] = []
    done = 0
    last_print = 0.0
    assert proc.stdout is not None
    for line in proc.stdout:
        line = line.rstrip()
        tail = (tail + [line])[-40:]
        if count and count(line):
            done += 1
        now = time.monotonic()
        if now - last_print > (0.2 if interactive else 10):
            last_print = now
            message = f"  {label}: {done} downloaded, {now - started:.0f}s"
            print(
                f"\r{message}" if interactive else message, end="" if interactive else "\n", file=sys.stderr, flush=True
            )
    code = proc.wait()
    if interactive:
        print(file=sys.stderr)
    if code != 0:
        raise ProvisionError(f"{label} failed (exit {code}). Last output:\n" + "\n".join(tail))


def _artifact_name(jar: str) -> str:
    match = re.match(r"^(.*?)-\d[\w.\-]*\.jar$", jar)
    return match.group(1) if match else jar


def resolve_maven_jars(pom_name: str, target: Path, label: str, skip_artifacts: set[str] = frozenset()) -> Path:
    """Copy a pom's runtime dependencies into `target` with Maven, once."""
    pom = maven_file(pom_name)
    settings_xml = maven_file("settings.xml")
    stamp = _stamp_of(pom.read_text(), settings_xml.read_text(), ",".join(sorted(skip_artifacts)))
    if _is_provisioned(target, stamp):
        return target
    mvn = require_tool("mvn")
    require_tool("java")
    target.parent.mkdir(parents=True, exist_ok=True)
    print(f"Provisioning {label} with Maven into {target} (once; later runs reuse it)", file=sys.stderr)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=f".{target.name}-") as tmp:
        out = Path(tmp) / "jars"
        _run_with_progress(
            [
                mvn,
                "-B",
                "-s",
                str(settings_xml),
                "-f",
                str(pom),
                "dependency:copy-dependencies",
                f"-DoutputDirectory={out}",
                "-DincludeScope=runtime",
            ],
            label,
            cwd=Path(tmp),
            count=lambda line: "Downloaded from" in line,
        )
        for jar in out.glob("*.jar"):
            if _artifact_name(jar.name) in skip_artifacts:
                jar.unlink()
        (out / STAMP).write_text(stamp)
        if target.exists():
            shutil.rmtree(target)
        out.rename(target)
    return target


def pyspark_jar_names() -> set[str]:
    import importlib.util

    spec = importlib.util.find_spec("pyspark")
    if spec is None or not spec.submodule_search_locations:
        return set()
    jars = Path(next(iter(spec.submodule_search_locations))) / "jars"
    return {_artifact_name(j.name) for j in jars.glob("*.jar")}


def provision_kafka(settings: Settings) -> Path:
    return resolve_maven_jars("kafka-broker.pom.xml", settings.kafka_jars_dir, "Kafka broker jars")


def provision_spark_jars(settings: Settings) -> Path:
    # Jars pyspark already ships stay out: two versions of one library on a classpath break Spark.
    return resolve_maven_jars(
        "spark-jars.pom.xml", settings.spark_jars_dir, "Spark Delta + Kafka jars", skip_artifacts=pyspark_jar_names()
    )


def ferretdb_patches() -> list[Path]:
    return sorted(Path(str(resources.files("recsys_stack") / FERRETDB_PATCHES)).glob("*.patch"))


def patch_ferretdb_source(src: Path, patches: list[Path]) -> None:
    """Apply the patch files, in order, to a copy of FerretDB's source.

    The copy becomes a git repository of its own first: `git apply` then works on it rather than on
    a repository around it, and FerretDB's test helpers find the source root by its .git.
    """
    git = require_tool("git")
    subprocess.run([git, "init", "-q"], cwd=src, check=True, capture_output=True)
    for patch in patches:
        applied = subprocess.run(
            [git, "apply", "--whitespace=nowarn", str(patch)], cwd=src, capture_output=True, text=True, check=False
        )
        if applied.returncode != 0:
            raise ProvisionError(
                f"FerretDB patch {patch.name} does not apply to {FERRETDB_MODULE}@"
                f"{FERRETDB_VERSION}:\n{applied.stderr.strip()}"
            )


def provision_ferretdb(settings: Settings) -> Path:
    """Build FerretDB 1.24 (one binary for its SQLite and PostgreSQL backends) from its Go module, once."""
    binary = settings.ferretdb_binary
    patches = ferretdb_patches()
    stamp = _stamp_of(FERRETDB_MODULE, FERRETDB_VERSION, *(f"{p.name}\n{p.read_text()}" for p in patches))
    if binary.exists() and _is_provisioned(binary.parent, stamp):
        return binary
    go = require_tool("go")
    binary.parent.mkdir(parents=True, exist_ok=True)
    print(f"Provisioning FerretDB {FERRETDB_VERSION} with Go into {binary} (once; ~2 minutes)", file=sys.stderr)
    with tempfile.TemporaryDirectory(dir=binary.parent, prefix=".ferretdb-") as tmp:
        tmp_path = Path(tmp)
        env = {"GOFLAGS": "-mod=mod", "GO111MODULE": "on"}
        info = subprocess.run(
            [go, "mod", "download", "-json", f"{FERRETDB_MODULE}@{FERRETDB_VERSION}"],
            cwd=tmp_path,
            env={**os.environ, **env},
            capture_output=True,
            text=True,
            check=False,
        )
        if info.returncode != 0:
            raise ProvisionError(
                f"go mod download {FERRETDB_MODULE}@{FERRETDB_VERSION} failed:\n{info.stdout}\n{info.stderr}"
            )
        module_dir = Path(json.loads(info.stdout)["Dir"])
        # The module zip lacks the generated version file its binary insists on; build a copy.
        src = tmp_path / "src"
        shutil.copytree(module_dir, src)
        for path in [src, *src.rglob("*")]:
            path.chmod(path.stat().st_mode | 0o200)
        (src / "build" / "version" / "version.txt").write_text(FERRETDB_VERSION + "\n")
        patch_ferretdb_source(src, patches)
        _run_with_progress(
            [go, "test", "-count=1", *FERRETDB_TESTED_PACKAGES],
            f"FerretDB tests of its {len(patches)} patches",
            cwd=src,
            count=lambda line: line.startswith("go: downloading"),
        )
        for package, pattern in FERRETDB_TESTED_BY_PATTERN.items():
            _run_with_progress(
                [go, "test", "-count=1", "-run", pattern, package],
                f"FerretDB tests {pattern} of {package}",
                cwd=src,
                count=lambda line: line.startswith("go: downloading"),
            )
        built = tmp_path / "ferretdb"
        # -buildvcs=false: the copy's repository has no commit to stamp into the binary
        _run_with_progress(
            [go, "build", "-trimpath", "-buildvcs=false", "-o", str(built), "./cmd/ferretdb"],
            "FerretDB build",
            cwd=src,
            count=lambda line: line.startswith("go: downloading"),
        )
        built.rename(binary)
        (binary.parent / STAMP).write_text(stamp)
    return binary
