"""The local stack is real: Kafka, the MongoDB-compatible server and Spark + Delta, on loopback."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pymongo import ReplaceOne, UpdateMany, UpdateOne

from recsys_core.settings import Settings
from recsys_io.kafka import make_consumer, make_producer
from recsys_io.mongo import mongo_client, serving_db
from recsys_io.spark import spark_master_state
from recsys_stack import manager, provision
from recsys_stack.servers import PostgresServer, servers

RECSYS = [sys.executable, "-m", "recsys_cli.main"]


def _produce(settings, topic, key, values):
    producer = make_producer(settings)
    try:
        for value in values:
            producer.send(topic, value, key=key).get(timeout=10)
    finally:
        producer.close()


def _drain(consumer, wanted_key, max_seconds=20.0):
    """Poll until no more records arrive for `wanted_key`; returns their values in order."""
    values = []
    deadline = time.monotonic() + max_seconds
    idle = 0
    while time.monotonic() < deadline and idle < 3:
        batch = consumer.poll(timeout_ms=1000)
        records = [r for rs in batch.values() for r in rs if r.key == wanted_key]
        idle = 0 if records else idle + 1
        values.extend(r.value for r in records)
    return values


def test_consumer_group_resumes_after_committed_offset(settings, unique):
    topic, group = settings.topics.dlq, f"group-{unique}"
    _produce(settings, topic, unique, [{"n": i} for i in range(6)])

    first = make_consumer(settings, topic, group_id=group)
    seen = []
    deadline = time.monotonic() + 20
    while len(seen) < 3 and time.monotonic() < deadline:
        for records in first.poll(timeout_ms=1000, max_records=1).values():
            for record in records:
                if record.key == unique and len(seen) < 3:
                    seen.append(record.value["n"])
                    first.commit()  # commit after each record we handled
    first.close(autocommit=False)
    assert seen == [0, 1, 2]

    second = make_consumer(settings, topic, group_id=group)
    try:
        rest = [v["n"] for v in _drain(second, unique)]
    finally:
        second.close(autocommit=False)
    assert rest == [3, 4, 5]


def test_mongo_upsert_find_and_index_round_trip(mongo_db):
    products = mongo_db["products"]
    now = datetime.now(UTC).replace(microsecond=0)
    products.update_one(
        {"_id": "p1"}, {"$set": {"category_id": "shoes", "price": 10.0, "updated_at": now}}, upsert=True
    )
    products.update_one({"_id": "p1"}, {"$set": {"price": 12.5}}, upsert=True)
    products.update_one({"_id": "p2"}, {"$set": {"category_id": "shoes", "price": 3.0}}, upsert=True)
    products.create_index([("category_id", 1), ("_id", 1)], name="category_products")

    assert products.count_documents({}) == 2
    assert products.find_one({"_id": "p1"}) == {"_id": "p1", "category_id": "shoes", "price": 12.5, "updated_at": now}
    assert [d["_id"] for d in products.find({"category_id": "shoes"}).sort("_id", 1)] == ["p1", "p2"]
    assert "category_products" in products.index_information()


def test_spark_writes_delta_appends_reads_back_and_time_travels(spark, settings):
    path = str(settings.lake_dir / "numbers")
    spark.range(5).write.format("delta").mode("overwrite").save(path)
    spark.range(5, 8).write.format("delta").mode("append").save(path)

    current = sorted(r.id for r in spark.read.format("delta").load(path).collect())
    version_0 = sorted(r.id for r in spark.read.format("delta").option("versionAsOf", 0).load(path).collect())
    assert current == list(range(8))
    assert version_0 == list(range(5))


def test_spark_reads_kafka_topic_in_batch_through_the_connector(spark, settings, unique):
    _produce(settings, settings.topics.dlq, unique, [{"n": i} for i in range(3)])
    frame = (
        spark.read.format("kafka")
        .option("kafka.bootstrap.servers", settings.kafka_servers)
        .option("subscribe", settings.topics.dlq)
        .option("startingOffsets", "earliest")
        .load()
        .selectExpr("CAST(key AS STRING) AS key", "CAST(value AS STRING) AS value")
        .where(f"key = '{unique}'")
    )
    assert sorted(r.value for r in frame.collect()) == ['{"n":0}', '{"n":1}', '{"n":2}']


def test_tasks_run_on_the_local_clusters_executors_with_the_drivers_code(spark, stack):
    if not stack.spark_cluster_is_local:
        pytest.skip("the test stack runs no Spark cluster (RECSYS_TEST_SPARK_WORKERS=0)")
    import recsys_core

    def where(_):
        """Runs in a Python worker: the java process above it (its executor), its recsys_core and cwd."""
        import os
        from pathlib import Path

        import recsys_core

        pid = os.getpid()
        while pid > 1:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")
            if Path(argv[0]).name == "java":
                break
            pid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        yield pid, argv, recsys_core.__file__, os.getcwd()

    context = spark.sparkContext
    assert context.master == stack.local_spark_master
    rows = context.parallelize(range(4), 4).mapPartitions(where).collect()
    driver = context._jvm.ProcessHandle.current().pid()
    assert driver != os.getpid()  # sanity: the driver's JVM, not this interpreter
    for jvm, argv, code, cwd in rows:
        assert jvm != driver
        assert "org.apache.spark.executor.CoarseGrainedExecutorBackend" in argv
        assert argv[argv.index("--app-id") + 1] == context.applicationId
        assert code == recsys_core.__file__  # executors import the code the driver runs
        assert Path(cwd).is_relative_to(stack.stack_dir) and "/work/app-" in cwd  # a worker's work dir
    apps = {app["id"]: app for app in spark_master_state(stack)["activeapps"]}
    assert apps[context.applicationId]["state"] == "RUNNING"


def test_messages_and_documents_survive_stack_down_and_up(settings, spark, unique):
    """And a Spark driver that stays up through it gets executors from the new workers."""
    _produce(settings, settings.topics.dlq, unique, [{"kept": True}])
    client = mongo_client(settings)
    serving_db(client, settings)["products"].insert_one({"_id": f"kept-{unique}"})
    client.close()

    env = {**os.environ}
    for command in (["stack", "down"], ["stack", "up"]):
        result = subprocess.run(RECSYS + command, env=env, capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stderr
    assert all(row.answers for row in manager.status(settings))

    client = mongo_client(settings)
    try:
        assert serving_db(client, settings)["products"].find_one({"_id": f"kept-{unique}"}) is not None
    finally:
        client.close()
    consumer = make_consumer(settings, settings.topics.dlq, group_id=None)
    try:
        assert _drain(consumer, unique) == [{"kept": True}]
    finally:
        consumer.close()
    assert spark.range(100).repartition(3).count() == 100


def test_stack_status_reports_each_component_with_pid_and_address(stack):
    result = subprocess.run(RECSYS + ["stack", "status"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    lines = {line.split()[0]: line for line in result.stdout.splitlines()[1:]}
    workers = [f"spark-worker-{i}" for i in range(1, stack.spark_workers + 1)]
    cluster = ["spark-master", *workers] if stack.spark_cluster_is_local else []
    assert set(lines) == {"kafka", "mongo", "spark-jars", *cluster}
    assert f"127.0.0.1:{stack.kafka_port}" in lines["kafka"] and " up " in lines["kafka"]
    assert f"127.0.0.1:{stack.mongo_port}" in lines["mongo"] and " up " in lines["mongo"]
    for name in ("kafka", *cluster):
        assert f" {manager.component(stack, name).process.pid()} " in lines[name], lines[name]
    if cluster:
        assert f"spark://127.0.0.1:{stack.spark_master_port} " in lines["spark-master"]
        assert f"http://127.0.0.1:{stack.spark_webui_port}" in lines["spark-master"]
        for i, name in enumerate(workers, start=1):
            assert " up " in lines[name] and f"127.0.0.1:{stack.spark_master_port + i} " in lines[name]


def test_up_is_idempotent_and_finds_running_servers(stack):
    pids = {s.name: s.process.pid() for s in servers(stack)}
    result = subprocess.run(RECSYS + ["stack", "up"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "already running" in result.stderr
    assert pids == {s.name: s.process.pid() for s in servers(stack)}


def test_taken_port_fails_naming_the_port_and_the_variable(stack, tmp_path):
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        port = blocker.getsockname()[1]
        env = {
            **os.environ,
            "RECSYS_DATA_DIR": str(tmp_path),
            "RECSYS_KAFKA_PORT": str(port),
            "RECSYS_KAFKA_CONTROLLER_PORT": str(port + 1 if port < 65535 else port - 1),
            "RECSYS_MONGO_PORT": str(stack.mongo_port + 5),
        }
        result = subprocess.run(RECSYS + ["stack", "up"], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert f"port {port} is already taken" in result.stderr
    assert "RECSYS_KAFKA_PORT" in result.stderr
    assert "Traceback" not in result.stderr


def test_lookups_by_id_use_the_id_index_even_with_a_guard(mongo_db):
    """Serving reads and guarded writes filter by `_id`: they must seek the index, never scan."""
    if shutil.which("mongod"):
        pytest.skip("mongod serves _id lookups from its index by construction")
    collection = mongo_db["recommendations"]
    collection.insert_many([{"_id": f"u{i}", "version": i} for i in range(50)])
    for query in ({"_id": "u7"}, {"_id": "u7", "version": 7}):
        plan = collection.find(query).explain()
        assert plan["filterPushdown"] is True
        assert "USING INDEX" in " ".join(plan["queryPlanner"]["Plan"]), plan
    assert collection.find_one({"_id": "u7", "version": 8}) is None  # the guard still applies


def test_reads_by_a_list_of_ids_use_the_id_index(mongo_db):
    """The speed layer reads a micro-batch's users with `{_id: {$in: [...]}}`: an index lookup."""
    if shutil.which("mongod"):
        pytest.skip("mongod serves $in on _id from its index by construction")
    collection = mongo_db["history"]
    collection.insert_many([{"_id": f"u{i}", "n": i} for i in range(50)])
    query = {"_id": {"$in": ["u3", "u9", "nobody"]}}
    plan = collection.find(query).explain()
    assert plan["filterPushdown"] is True
    assert "USING INDEX" in " ".join(plan["queryPlanner"]["Plan"]), plan
    assert sorted(doc["n"] for doc in collection.find(query)) == [3, 9]
    mixed = {"_id": {"$in": ["u3", 9]}}  # not only strings: filtered by FerretDB itself, still right
    assert [doc["n"] for doc in collection.find(mixed)] == [3]


def test_one_update_command_can_replace_hundreds_of_documents(mongo_db):
    """A bulk of guarded replaces larger than FerretDB's connection pool (100) completes."""
    collection = mongo_db["recommendations"]
    collection.insert_many([{"_id": f"u{i}", "token": 0} for i in range(300)])
    result = collection.bulk_write(
        [ReplaceOne({"_id": f"u{i}", "token": 0}, {"token": 1}) for i in range(300)], ordered=False
    )
    assert result.matched_count == 300
    assert collection.count_documents({"token": 1}) == 300


def test_statements_of_one_update_command_see_the_writes_before_them(mongo_db):
    """FerretDB writes a command's statements by `_id` in batches; each still reads what came before it."""
    collection = mongo_db["history"]
    collection.insert_one({"_id": "b", "v": 0})
    result = collection.bulk_write(
        [
            ReplaceOne({"_id": "a"}, {"v": 1}, upsert=True),  # inserted
            UpdateOne({"_id": "a"}, {"$inc": {"v": 1}}),  # the same document again: sees v 1
            UpdateOne({"_id": "b", "v": 1}, {"$set": {"v": 9}}),  # guard does not hold
            ReplaceOne({"_id": "b", "v": 0}, {"v": 3}),  # guard holds
            UpdateMany({"v": {"$gte": 2, "$lt": 5}}, {"$set": {"seen": True}}),  # not by _id: sees a and b
            ReplaceOne({"_id": "c"}, {"v": 4}, upsert=True),
        ]
    )
    assert (result.matched_count, result.modified_count, result.upserted_count) == (4, 4, 2)
    assert sorted(result.upserted_ids.values()) == ["a", "c"]
    assert {doc["_id"]: doc for doc in collection.find()} == {
        "a": {"_id": "a", "v": 2, "seen": True},
        "b": {"_id": "b", "v": 3, "seen": True},
        "c": {"_id": "c", "v": 4},
    }


def test_a_failing_statement_keeps_the_writes_before_it_and_stops_the_command(mongo_db):
    """A duplicate key in the middle of a batched command: earlier writes stay, later ones are not made."""
    collection = mongo_db["history"]
    collection.create_index("email", unique=True)
    collection.insert_one({"_id": "taken", "email": "x@example.com"})
    # The command itself: pymongo cannot read FerretDB's reply to a failed update (no nModified).
    reply = mongo_db.command(
        {
            "update": "history",
            "ordered": True,
            "updates": [
                {"q": {"_id": "a"}, "u": {"email": "a@example.com"}, "upsert": True},
                {"q": {"_id": "b"}, "u": {"email": "x@example.com"}, "upsert": True},
                {"q": {"_id": "c"}, "u": {"email": "c@example.com"}, "upsert": True},
            ],
        }
    )
    assert [error["code"] for error in reply["writeErrors"]] == [11000]
    assert sorted(doc["_id"] for doc in collection.find()) == ["a", "taken"]


def test_write_ahead_log_stays_bounded_under_steady_replaces(mongo_db, settings, stack):
    """Guarded replaces, as the speed layer writes them, let SQLite restart its log after a checkpoint.

    FerretDB as released kept each update's read open across its write, so no checkpoint ever
    completed: the log grew by every write (hundreds of MB in minutes) and each commit re-sorted it.
    """
    if shutil.which("mongod"):
        pytest.skip("mongod has no SQLite write-ahead log")
    collection = mongo_db["recommendations"]
    collection.insert_many([{"_id": f"u{i}", "token": 0, "items": [f"p{k}" for k in range(40)]} for i in range(200)])
    for token in range(1, 21):  # 4,000 replaces: some 12,000 log pages if the log never restarted
        collection.bulk_write(
            [
                ReplaceOne(
                    {"_id": f"u{i}", "token": token - 1},
                    {"token": token, "items": [f"p{k + token}" for k in range(40)]},
                )
                for i in range(200)
            ],
            ordered=False,
        )
    assert collection.count_documents({"token": 20}) == 200
    wal = stack.stack_dir / "ferretdb" / f"{settings.mongo_db}.sqlite-wal"
    page_size = 4096
    assert wal.stat().st_size < 2_500 * page_size, f"{wal} is {wal.stat().st_size:,} bytes"


def test_postgresql_backend_runs_with_the_stack_and_serves_reads_and_writes_by_id(stack):
    """RECSYS_FERRETDB_BACKEND=postgresql: `up` starts PostgreSQL before FerretDB on it, `down` stops both."""
    if shutil.which("mongod"):
        pytest.skip("with mongod on PATH the stack runs no FerretDB")
    try:
        provision.postgres_bin_dir()
    except provision.ProvisionError as error:
        pytest.skip(f"{error} (`make test` installs it when it runs as root)")
    # Not pytest's tmp_path, whose parents only root may enter: PostgreSQL runs as `postgres`.
    data_dir = Path(tempfile.mkdtemp(prefix="recsys-postgresql-stack-"))
    data_dir.chmod(0o755)
    env = {
        **os.environ,
        "RECSYS_DATA_DIR": str(data_dir),
        "RECSYS_FERRETDB_BACKEND": "postgresql",
        "RECSYS_KAFKA_BOOTSTRAP": stack.kafka_servers,  # the test stack's broker: only the store is new
        "RECSYS_MONGO_PORT": str(stack.mongo_port + 3),
        "RECSYS_POSTGRES_PORT": str(stack.postgres_port),
        "RECSYS_SPARK_WORKERS": "0",  # the test stack's cluster already holds the master's port
    }
    settings = Settings.from_env(env)
    try:
        result = subprocess.run(RECSYS + ["stack", "up"], env=env, capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stderr
        assert result.stderr.index("postgres: ready") < result.stderr.index("mongo: started")
        status = subprocess.run(RECSYS + ["stack", "status"], env=env, capture_output=True, text=True, timeout=60)
        assert status.returncode == 0, status.stdout + status.stderr
        lines = {line.split()[0]: line for line in status.stdout.splitlines()[1:]}
        assert f"127.0.0.1:{stack.postgres_port}" in lines["postgres"] and " up " in lines["postgres"]
        assert "FerretDB 1.24 (PostgreSQL)" in lines["mongo"]

        client = mongo_client(settings)
        try:
            collection = serving_db(client, settings)["recommendations"]
            collection.insert_many([{"_id": f"u{i}", "token": 0} for i in range(300)])
            # Guarded replaces by `_id`, more than one batch of them, as the speed layer writes them.
            written = collection.bulk_write(
                [ReplaceOne({"_id": f"u{i}", "token": 0}, {"token": 1}) for i in range(300)], ordered=False
            )
            assert written.matched_count == 300
            assert collection.find_one({"_id": "u7"}) == {"_id": "u7", "token": 1}
            assert collection.find_one({"_id": "u7", "token": 0}) is None
            assert sorted(doc["_id"] for doc in collection.find({"_id": {"$in": ["u3", "u9", "nobody"]}})) == [
                "u3",
                "u9",
            ]
            for query in ({"_id": "u7", "token": 1}, {"_id": {"$in": ["u3", "u9"]}}):
                plan = collection.find(query).explain()
                assert plan["filterPushdown"] is True
                assert "_jsonb -> '_id'::text) =" in json.dumps(plan["queryPlanner"]), plan  # the index's operator
        finally:
            client.close()
    finally:
        down = subprocess.run(RECSYS + ["stack", "down"], env=env, capture_output=True, text=True, timeout=120)
        shutil.rmtree(data_dir, ignore_errors=True)
    assert down.returncode == 0, down.stderr
    assert "mongo: stopped" in down.stderr and "postgres: stopped" in down.stderr
    assert PostgresServer(settings).process.pid() is None


def test_tasks_run_the_drivers_interpreter_with_its_dependencies(spark):
    """Tasks import the project's dependencies (numpy, pymongo, kafka) from the driver's venv."""

    def interpreter(_):
        import sys

        import kafka
        import numpy
        import pymongo

        yield sys.prefix, numpy.__file__, pymongo.__file__, kafka.__file__

    for prefix, *modules in spark.sparkContext.parallelize(range(2), 2).mapPartitions(interpreter).collect():
        assert prefix == sys.prefix
        assert all(m.startswith(sys.prefix) for m in modules)
