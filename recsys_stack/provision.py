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
# FerretDB 1.24's SQLite backend creates the unique `_id` index on `_ferretdb_sjson->"_id"` but
# filters by `_ferretdb_sjson->'$._id'`; SQLite matches index expressions textually, so every
# lookup by `_id` scanned the whole table (100x slower at 20,000 documents). Filtering with the
# index's own expression makes those lookups index seeks; stored data and indexes are unchanged.
# It also pushed `_id` down only when it was the filter's sole key, so a guarded write such as
# {_id: u, updated_at: t} scanned; every handler re-applies the whole filter to what the backend
# returns, so narrowing by `_id` whatever else the filter holds is safe.
FERRETDB_PATCHES = [
    ("internal/backends/sqlite/metadata/metadata.go",
     'IDColumn = DefaultColumn + "->\'$._id\'"',
     'IDColumn = DefaultColumn + "->\\"_id\\""'),
    ("internal/backends/sqlite/collection.go",
     "if params.Filter.Len() == 1 {",
     "if params.Filter.Len() >= 1 {"),
    # `{_id: {$in: [...]}}` was not pushed down at all: reading 500 documents by id took 6.7 s at
    # 20,000 documents. Strings and ObjectIDs in `$in` now become `_id IN (...)` on the index.
    ("internal/backends/sqlite/collection.go",
     "\t\t\targs = []any{string(must.NotFail(sjson.MarshalSingleValue(v)))}\n\t\t}\n",
     "\t\t\targs = []any{string(must.NotFail(sjson.MarshalSingleValue(v)))}\n"
     "\t\tcase *types.Document:\n\t\t\twhereClause, args = idInClause(v.(*types.Document))\n\t\t}\n"),
    ("internal/backends/sqlite/collection.go",  # and `explain` says so
     "\torderByClause := prepareOrderByClause(params.Sort)\n\tsortPushdown := ",
     "\tfilterPushdown = whereClause != \"\"\n\torderByClause := prepareOrderByClause(params.Sort)\n\tsortPushdown := "),
    ("internal/backends/sqlite/collection.go",
     "// InsertAll implements backends.Collection interface.\n",
     """// idInClause narrows `{$in: [strings or ObjectIDs]}` on `_id` to an index lookup.
func idInClause(cond *types.Document) (string, []any) {
\tv, _ := cond.Get("$in")
\targs := sjson.MarshalIDsForIndex(v)
\tif cond.Len() != 1 || args == nil {
\t\treturn "", nil
\t}
\treturn fmt.Sprintf(` WHERE %s IN (%s)`, metadata.IDColumn, strings.Repeat(", ?", len(args))[2:]), args
}

// InsertAll implements backends.Collection interface.
"""),
    # An `update` command kept each statement's cursor open until the whole command ended: past
    # 100 statements the SQLite pool (100 connections) was exhausted and the command waited
    # forever for a connection it held itself. And while a cursor is open its read snapshot
    # is too, so the write that follows could never be checkpointed completely: the write-ahead
    # log never restarted and grew without bound (537 MB after a few minutes of replaces), and
    # every commit past `wal_autocheckpoint` re-sorted all of it (a third of FerretDB's CPU).
    # Each statement now reads its matches and closes the cursor before it writes.
    ("internal/handler/msg_update.go",
     "\t\tresult, err := common.UpdateDocument(ctx, c, \"update\", iter, &u)\n",
     "\t\tdocs, err := iterator.ConsumeValues(iter)\n\t\tcloser.Close()\n"
     "\t\tif err != nil {\n\t\t\treturn 0, 0, nil, lazyerrors.Error(err)\n\t\t}\n\n"
     "\t\tmatchedIter := iterator.Values(iterator.ForSlice(docs))\n"
     "\t\tresult, err := common.UpdateDocument(ctx, w, \"update\", matchedIter, &u)\n\t\tmatchedIter.Close()\n"),
    # Each statement of an `update` command wrote in its own transaction, and the commits took
    # most of a bulk replace's time. Statements that address one document by `_id` now write
    # through the batch of ferretdb/msg_update_batch.go: one transaction for up to 256 of them,
    # whose documents are read with one query.
    ("internal/handler/msg_update.go",
     "func (h *Handler) updateDocument(ctx context.Context, params *common.UpdateParams) (",
     "func (h *Handler) updateStatements(ctx context.Context, params *common.UpdateParams, batch *updateBatch) ("),
    ("internal/handler/msg_update.go",
     "\t\tvar qp backends.QueryParams\n",
     "\t\tw, err := batch.target(ctx, c, params.Updates, i)\n\t\tif err != nil {\n\t\t\treturn 0, 0, nil, lazyerrors.Error(err)\n\t\t}\n\n"
     "\t\tvar qp backends.QueryParams\n"),
    ("internal/handler/msg_update.go", "\tfor _, u := range params.Updates {\n", "\tfor i, u := range params.Updates {\n"),
    ("internal/handler/msg_update.go", "\t\tres, err := c.Query(ctx, &qp)\n", "\t\tres, err := w.Query(ctx, &qp)\n"),
    # Such a transaction parsed its UPDATE statement anew for every document, and encoded each
    # document while holding SQLite's write lock. It now encodes them all first, then prepares
    # the statement once.
    ("internal/util/fsql/tx.go",
     "// QueryContext calls [*sql.Tx.QueryContext].\n",
     "// PrepareContext calls [*sql.Tx.PrepareContext].\n"
     "func (tx *Tx) PrepareContext(ctx context.Context, query string) (*sql.Stmt, error) {\n"
     "\treturn tx.sqlTx.PrepareContext(ctx, query)\n}\n\n"
     "// QueryContext calls [*sql.Tx.QueryContext].\n"),
    ("internal/backends/sqlite/collection.go",
     """\terr := db.InTransaction(ctx, func(tx *fsql.Tx) error {
\t\tfor _, doc := range params.Docs {
\t\t\tb, err := sjson.Marshal(doc)
\t\t\tif err != nil {
\t\t\t\treturn lazyerrors.Error(err)
\t\t\t}

\t\t\tid, _ := doc.Get("_id")
\t\t\tmust.NotBeZero(id)

\t\t\targ := string(must.NotFail(sjson.MarshalSingleValue(id)))

\t\t\tr, err := tx.ExecContext(ctx, q, string(b), arg)
""",
     """\trows := make([][2]any, len(params.Docs))

\tfor i, doc := range params.Docs {
\t\tb, err := sjson.Marshal(doc)
\t\tif err != nil {
\t\t\treturn nil, lazyerrors.Error(err)
\t\t}

\t\tid, _ := doc.Get("_id")
\t\tmust.NotBeZero(id)

\t\trows[i] = [2]any{string(b), string(must.NotFail(sjson.MarshalSingleValue(id)))}
\t}

\terr := db.InTransaction(ctx, func(tx *fsql.Tx) error {
\t\tstmt, err := tx.PrepareContext(ctx, q)
\t\tif err != nil {
\t\t\treturn lazyerrors.Error(err)
\t\t}
\t\tdefer stmt.Close()

\t\tfor _, row := range rows {
\t\t\tr, err := stmt.ExecContext(ctx, row[0], row[1])
"""),
    # Reading a stored document started an encoding/json decoder for every nested value, scalars
    # included: a quarter of the server's CPU under the speed layer's replaces. FerretDB's decoder
    # stays, renamed, for whatever the one-pass decoder of ferretdb/sjson_fast.go declines.
    ("internal/handler/sjson/sjson.go",
     "func Unmarshal(data []byte) (*types.Document, error) {",
     "func unmarshalOriginal(data []byte) (*types.Document, error) {"),
    # Encoding a document called encoding/json for every value and key, each into a buffer of its
    # own: a sixth of the server's CPU under the speed layer's replaces. FerretDB's encoder stays,
    # renamed, for what the encoder of ferretdb/sjson_marshal_fast.go leaves to it.
    ("internal/handler/sjson/sjson.go",
     "func Marshal(d *types.Document) ([]byte, error) {",
     "func marshalOriginal(d *types.Document) ([]byte, error) {"),
    # Its PostgreSQL backend has the same flaw: it filters `_id` with `_jsonb->'_id' @> value`, an
    # operator the unique btree index on `_jsonb->'_id'` cannot serve, so every read or guarded
    # write by `_id` scanned the table (10 ms at 20,000 documents, in parallel workers), and
    # `{_id: {$in: [...]}}` was not pushed down at all (160 ms). Strings and ObjectIDs are now
    # compared with `=` and `IN`, which the index serves.
    ("internal/backends/postgresql/query.go",
     "\t\tcase float64, string, types.ObjectID, bool, time.Time, int32, int64:\n"
     "\t\t\tif f, a := filterEqual(p, key, v, keyOperator); f != \"\" {\n",
     "\t\tcase string, types.ObjectID:\n"
     "\t\t\tif rootKey == \"_id\" {\n"
     "\t\t\t\tfilters = append(filters, metadata.IDColumn+\" = \"+p.Next())\n"
     "\t\t\t\targs = append(args, string(must.NotFail(sjson.MarshalSingleValue(v))))\n"
     "\t\t\t} else if f, a := filterEqual(p, key, v, keyOperator); f != \"\" {\n"
     "\t\t\t\tfilters = append(filters, f)\n\t\t\t\targs = append(args, a...)\n\t\t\t}\n\n"
     "\t\tcase float64, bool, time.Time, int32, int64:\n"
     "\t\t\tif f, a := filterEqual(p, key, v, keyOperator); f != \"\" {\n"),
    ("internal/backends/postgresql/query.go",
     "\t\t\t\tcase \"$ne\":\n",
     "\t\t\t\tcase \"$in\":\n"
     "\t\t\t\t\tif f, a := idIn(p, rootKey, v); f != \"\" {\n"
     "\t\t\t\t\t\tfilters = append(filters, f)\n\t\t\t\t\t\targs = append(args, a...)\n\t\t\t\t\t}\n\n"
     "\t\t\t\tcase \"$ne\":\n"),
    ("internal/backends/postgresql/query.go",
     "// prepareOrderByClause returns ORDER BY clause",
     """// idIn narrows `{_id: {$in: [strings or ObjectIDs]}}` to a lookup on the unique `_id` index.
func idIn(p *metadata.Placeholder, key string, v any) (string, []any) {
\targs := sjson.MarshalIDsForIndex(v)
\tif key != "_id" || args == nil {
\t\treturn "", nil
\t}
\tplaceholders := make([]string, len(args))
\tfor i := range placeholders {
\t\tplaceholders[i] = p.Next()
\t}
\treturn fmt.Sprintf(`%s IN (%s)`, metadata.IDColumn, strings.Join(placeholders, ", ")), args
}

// prepareOrderByClause returns ORDER BY clause"""),
    # Every cursor and iterator was registered in a pprof profile with a finalizer that crashes
    # the server if one is never closed: a leak detector for FerretDB's own tests, and 7% of its
    # CPU here. Release builds (no `ferretdb_debug` tag) skip it.
    ("internal/util/resource/resource.go",
     "func Track(obj any, token *Token) {\n\tcheckArgs(obj, token)\n",
     "func Track(obj any, token *Token) {\n\tcheckArgs(obj, token)\n\n\tif !debugbuild.Enabled {\n\t\treturn\n\t}\n"),
    ("internal/util/resource/resource.go",
     "func Untrack(obj any, token *Token) {\n\tcheckArgs(obj, token)\n",
     "func Untrack(obj any, token *Token) {\n\tcheckArgs(obj, token)\n\n\tif !debugbuild.Enabled {\n\t\treturn\n\t}\n"),
]
# Files added to FerretDB's source (from recsys_stack/ferretdb/); the tests run before the build.
FERRETDB_FILES = {
    "internal/handler/sjson/sjson_fast.go": "sjson_fast.go",
    "internal/handler/sjson/sjson_fast_test.go": "sjson_fast_test.go",
    "internal/handler/sjson/sjson_marshal_fast.go": "sjson_marshal_fast.go",
    "internal/handler/sjson/sjson_marshal_fast_test.go": "sjson_marshal_fast_test.go",
    "internal/handler/msg_update_batch.go": "msg_update_batch.go",
    "internal/handler/sjson/sjson_ids.go": "sjson_ids.go",
}
FERRETDB_TESTED_PACKAGE = "./internal/handler/sjson/"
STAMP = ".provisioned"

INSTALL_HINTS = {
    "java": "install a JDK 17+ (Debian/Ubuntu: apt-get install openjdk-17-jdk-headless)",
    "mvn": "install Apache Maven 3.8+ (Debian/Ubuntu: apt-get install maven)",
    "go": "install Go 1.22+ (https://go.dev/doc/install or apt-get install golang)",
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
        raise ProvisionError("PostgreSQL was not found (no `postgres` on PATH nor in /usr/lib/postgresql), and "
                             f"RECSYS_FERRETDB_BACKEND=postgresql runs FerretDB on it: {INSTALL_HINTS['postgres']}.")
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


def _run_with_progress(argv: list[str], label: str, cwd: Path | None = None,
                       env: dict[str, str] | None = None, count: Callable[[str], bool] | None = None) -> None:
    """Run a build tool, showing one live line of progress; on failure show its output's tail."""
    started = time.monotonic()
    interactive = sys.stderr.isatty()
    proc = subprocess.Popen(argv, cwd=cwd, env={**os.environ, **(env or {})}, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, bufsize=1)
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
            print(f"\r{message}" if interactive else message, end="" if interactive else "\n",
                  file=sys.stderr, flush=True)
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
            [mvn, "-B", "-s", str(settings_xml), "-f", str(pom), "dependency:copy-dependencies",
             f"-DoutputDirectory={out}", "-DincludeScope=runtime"],
            label, cwd=Path(tmp), count=lambda line: "Downloaded from" in line)
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
    return resolve_maven_jars("spark-jars.pom.xml", settings.spark_jars_dir, "Spark Delta + Kafka jars",
                              skip_artifacts=pyspark_jar_names())


def _ferretdb_file(name: str) -> Path:
    return Path(str(resources.files("recsys_stack") / "ferretdb" / name))


def patch_ferretdb_source(src: Path) -> None:
    """Apply FERRETDB_PATCHES and add FERRETDB_FILES to a copy of FerretDB's source."""
    for relative, old, new in FERRETDB_PATCHES:
        source = src / relative
        text = source.read_text()
        if old not in text:
            raise ProvisionError(f"FerretDB source changed: {relative} no longer has {old!r}")
        source.write_text(text.replace(old, new))
    for relative, name in FERRETDB_FILES.items():
        shutil.copyfile(_ferretdb_file(name), src / relative)


def provision_ferretdb(settings: Settings) -> Path:
    """Build FerretDB 1.24 (one binary for its SQLite and PostgreSQL backends) from its Go module, once."""
    binary = settings.ferretdb_binary
    stamp = _stamp_of(FERRETDB_MODULE, FERRETDB_VERSION, repr(FERRETDB_PATCHES),
                      *(_ferretdb_file(name).read_text() for name in FERRETDB_FILES.values()))
    if binary.exists() and _is_provisioned(binary.parent, stamp):
        return binary
    go = require_tool("go")
    binary.parent.mkdir(parents=True, exist_ok=True)
    print(f"Provisioning FerretDB {FERRETDB_VERSION} with Go into {binary} (once; ~2 minutes)",
          file=sys.stderr)
    with tempfile.TemporaryDirectory(dir=binary.parent, prefix=".ferretdb-") as tmp:
        tmp_path = Path(tmp)
        env = {"GOFLAGS": "-mod=mod", "GO111MODULE": "on"}
        info = subprocess.run([go, "mod", "download", "-json", f"{FERRETDB_MODULE}@{FERRETDB_VERSION}"],
                              cwd=tmp_path, env={**os.environ, **env}, capture_output=True, text=True)
        if info.returncode != 0:
            raise ProvisionError(f"go mod download {FERRETDB_MODULE}@{FERRETDB_VERSION} failed:\n"
                                 f"{info.stdout}\n{info.stderr}")
        module_dir = Path(json.loads(info.stdout)["Dir"])
        # The module zip lacks the generated version file its binary insists on; build a copy.
        src = tmp_path / "src"
        shutil.copytree(module_dir, src)
        for path in [src, *src.rglob("*")]:
            path.chmod(path.stat().st_mode | 0o200)
        (src / "build" / "version" / "version.txt").write_text(FERRETDB_VERSION + "\n")
        patch_ferretdb_source(src)
        (src / ".git").mkdir()  # FerretDB's test helpers find the source root by its .git
        _run_with_progress([go, "test", "-count=1", FERRETDB_TESTED_PACKAGE],
                           "FerretDB tests of the patched encoder and decoder",
                           cwd=src, count=lambda line: line.startswith("go: downloading"))
        built = tmp_path / "ferretdb"
        _run_with_progress([go, "build", "-trimpath", "-o", str(built), "./cmd/ferretdb"],
                           "FerretDB build", cwd=src, count=lambda line: line.startswith("go: downloading"))
        built.rename(binary)
        (binary.parent / STAMP).write_text(stamp)
    return binary
