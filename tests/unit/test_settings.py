"""Settings: every RECSYS_* variable is validated and a bad one is named in the error."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from recsys_core.errors import SettingsError
from recsys_core.settings import Settings
from tests.support import ROOT


def test_defaults_point_at_the_local_stack():
    settings = Settings.from_env({})
    assert settings.kafka_servers == "127.0.0.1:9092"
    assert settings.mongo_url == "mongodb://127.0.0.1:27017/"
    assert settings.kafka_is_local and settings.mongo_is_local
    assert settings.tools_dir == settings.data_dir / "stack" / "tools"
    assert settings.spark_master_url == "local[2]" and not settings.spark_cluster_is_local


def test_external_addresses_turn_off_the_local_servers():
    settings = Settings.from_env(
        {"RECSYS_KAFKA_BOOTSTRAP": "kafka-1:9092, kafka-2:9092", "RECSYS_MONGO_URI": "mongodb://db.internal:27017/"}
    )
    assert settings.kafka_servers == "kafka-1:9092,kafka-2:9092"
    assert not settings.kafka_is_local and not settings.mongo_is_local


@pytest.mark.parametrize(
    "variable, value",
    [
        ("RECSYS_MONGO_URI", "localhost:27017"),
        ("RECSYS_MONGO_URI", "mongodb://host:port/"),
        ("RECSYS_KAFKA_BOOTSTRAP", "kafka-without-port"),
        ("RECSYS_KAFKA_PORT", "ninety"),
        ("RECSYS_API_PORT", "70000"),
        ("RECSYS_MIN_LIST_SIZE", "0"),
        ("RECSYS_SPARK_MASTER", "mesos://x"),
        ("RECSYS_SPARK_WORKERS", "-1"),
        ("RECSYS_SPARK_WORKER_CORES", "0"),
        ("RECSYS_SPARK_WORKER_MEMORY", "1024"),
        ("RECSYS_SPARK_MASTER_PORT", "0"),
        ("RECSYS_STREAM_TRIGGER_SECONDS", "-1"),
        ("RECSYS_EVENTS_START_DATE", "2026-13-01"),
    ],
)
def test_bad_value_fails_naming_the_variable(variable, value):
    with pytest.raises(SettingsError) as error:
        Settings.from_env({variable: value})
    assert error.value.variable == variable
    assert variable in str(error.value)


def test_sessions_use_the_local_cluster_when_the_stack_runs_one_and_a_named_master_wins():
    cluster = Settings.from_env({"RECSYS_SPARK_WORKERS": "2", "RECSYS_SPARK_MASTER_PORT": "17077"})
    assert cluster.spark_cluster_is_local and cluster.spark_master_url == "spark://127.0.0.1:17077"
    named = Settings.from_env({"RECSYS_SPARK_WORKERS": "2", "RECSYS_SPARK_MASTER": "spark://spark.internal:7077"})
    assert named.spark_master_url == "spark://spark.internal:7077"
    assert Settings.from_env({"RECSYS_SPARK_WORKERS": "0"}).spark_master_url == "local[2]"


def _conf(tmp_path, min_executors=0, **variables):
    from recsys_io.spark import spark_conf

    jars = tmp_path / "tools" / "spark-jars"
    jars.mkdir(parents=True, exist_ok=True)
    (jars / "delta-spark_4.2_2.13-4.4.0.jar").touch()
    return spark_conf(
        Settings.from_env({"RECSYS_DATA_DIR": str(tmp_path), "RECSYS_TOOLS_DIR": str(tmp_path / "tools"), **variables}),
        min_executors=min_executors,
    )


def test_on_the_local_cluster_executors_fill_a_worker_read_the_jars_in_place_and_go_back_when_idle(tmp_path):
    conf = _conf(tmp_path, RECSYS_SPARK_WORKERS="3", RECSYS_SPARK_WORKER_CORES="2", RECSYS_SPARK_WORKER_MEMORY="3g")
    assert conf["spark.master"] == "spark://127.0.0.1:7077"
    assert (conf["spark.executor.cores"], conf["spark.executor.memory"], conf["spark.cores.max"]) == ("2", "3g", "6")
    assert conf["spark.dynamicAllocation.enabled"] == "true"
    assert conf["spark.dynamicAllocation.minExecutors"] == "0"
    assert _conf(tmp_path, 1, RECSYS_SPARK_WORKERS="3")["spark.dynamicAllocation.minExecutors"] == "1"  # the stream
    jar = str(tmp_path / "tools" / "spark-jars" / "delta-spark_4.2_2.13-4.4.0.jar")
    assert conf["spark.executor.extraClassPath"] == conf["spark.driver.extraClassPath"] == jar
    assert "spark.jars" not in conf
    # Executors import the project from where this process imported it, whatever their worker's environment.
    assert conf["spark.executorEnv.PYTHONPATH"] == str(ROOT)


def test_in_process_and_on_a_named_cluster_the_jars_are_shipped_and_spark_sizes_executors(tmp_path):
    for variables in ({}, {"RECSYS_SPARK_WORKERS": "2", "RECSYS_SPARK_MASTER": "spark://spark.internal:7077"}):
        conf = _conf(tmp_path, **variables)
        assert conf["spark.jars"].endswith("delta-spark_4.2_2.13-4.4.0.jar")
        local_cluster_only = {
            "spark.executor.memory",
            "spark.executor.extraClassPath",
            "spark.dynamicAllocation.enabled",
        }
        assert not local_cluster_only & set(conf)


def test_extra_jvm_options_reach_the_driver_and_the_executors_beside_the_java_blas_flags(tmp_path):
    from recsys_io.spark import JAVA_BLAS_ONLY

    plain = _conf(tmp_path)
    assert plain["spark.executor.extraJavaOptions"] == JAVA_BLAS_ONLY
    conf = _conf(tmp_path, RECSYS_SPARK_JAVA_OPTIONS="  -XX:TieredStopAtLevel=1 \n -XX:+UseSerialGC ")
    extra = "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC"
    assert conf["spark.executor.extraJavaOptions"] == f"{JAVA_BLAS_ONLY} {extra}"
    assert conf["spark.driver.extraJavaOptions"].endswith(f"{JAVA_BLAS_ONLY} {extra}")
    assert conf["spark.driver.extraJavaOptions"].startswith("-Xss16m ")


def test_the_driver_listens_on_loopback_unless_a_cluster_of_other_machines_needs_another_address(tmp_path, monkeypatch):
    from recsys_io.spark import prepare_driver_process

    plain = _conf(tmp_path)
    assert plain["spark.driver.host"] == plain["spark.driver.bindAddress"] == "127.0.0.1"
    remote = _conf(tmp_path, RECSYS_SPARK_MASTER="spark://10.0.0.5:7077", RECSYS_SPARK_DRIVER_HOST="10.0.0.9")
    assert remote["spark.driver.host"] == remote["spark.driver.bindAddress"] == "10.0.0.9"
    # The JVM the session starts binds to the same address, and says nothing of other interfaces.
    monkeypatch.delenv("SPARK_LOCAL_IP", raising=False)
    monkeypatch.delenv("PYSPARK_PYTHON", raising=False)
    prepare_driver_process(remote)
    assert os.environ["SPARK_LOCAL_IP"] == "10.0.0.9" and os.environ["PYSPARK_PYTHON"] == sys.executable


def test_cli_with_malformed_mongo_uri_exits_2_with_the_variable_and_no_traceback():
    env = {**os.environ, "RECSYS_MONGO_URI": "not-a-uri"}
    result = subprocess.run(
        [sys.executable, "-m", "recsys_cli.main", "stack", "status"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "RECSYS_MONGO_URI" in result.stderr
    assert "Traceback" not in result.stderr


def test_every_setting_is_a_recsys_variable_with_a_description():
    for var in Settings.variables():
        assert var.env.startswith("RECSYS_") and var.doc


def test_readme_documents_every_setting():
    readme = (ROOT / "README.md").read_text()
    missing = [var.env for var in Settings.variables() if f"`{var.env}`" not in readme]
    assert missing == [], f"README's settings table lacks {missing}"


def test_daily_event_partitions_start_on_the_day_configured_when_the_definitions_load(monkeypatch):
    from recsys_assets.definitions import defs

    monkeypatch.setenv("RECSYS_EVENTS_START_DATE", "2025-06-15")
    job = defs().resolve_job_def("hourly_refresh")
    assert job.partitions_def.get_first_partition_key() == "2025-06-15"


def test_read_keys_are_a_comma_separated_list_like_the_write_keys():
    assert Settings.from_env({}).api_read_keys == ()
    assert Settings.from_env({"RECSYS_API_READ_KEYS": " r1, ,r2 "}).api_read_keys == ("r1", "r2")


def test_make_run_gives_the_api_a_read_key_kept_across_runs_and_hands_it_to_the_storefront(tmp_path):
    from recsys_cli.run import api_key, platform_children, read_key
    from recsys_simulator import StoreConfig

    settings = Settings.from_env({"RECSYS_DATA_DIR": str(tmp_path)})
    key, read = api_key(settings), read_key(settings)
    assert read and read != key and read_key(settings) == read
    api = next(child for child in platform_children(settings, key, read, StoreConfig(), 0) if child.name == "api")
    assert (api.env["RECSYS_API_KEYS"], api.env["RECSYS_API_READ_KEYS"]) == (key, read)
    assert read_key(Settings.from_env({"RECSYS_DATA_DIR": str(tmp_path), "RECSYS_API_READ_KEYS": "mine"})) == "mine"
