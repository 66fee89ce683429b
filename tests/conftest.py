"""Test fixtures: a real, isolated stack (Kafka, MongoDB-compatible server, Spark + Delta).

The suite runs its own stack on its own ports and data dir (`.recsys-test/`), sharing only the
provisioned jars and binaries with the development stack, so `make test` never touches the data
of a running `make run`. Tests that need no server use none of these fixtures.
"""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]  # the checkout
# RECSYS_TEST_SLOT=N runs a second suite beside the first: other ports, other data dir. Each
# pytest-xdist worker (`make test` runs two) takes a slot of its own, WORKER_SLOTS apart, so the
# workers' stacks never meet and slots 1 to 4 stay free for suites run by hand beside them.
WORKER_SLOTS = 5
SLOT = int(os.environ.get("RECSYS_TEST_SLOT", "0")) + WORKER_SLOTS * int(
    os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw")
)

TEST_ENV = {
    "RECSYS_DATA_DIR": str(ROOT / (".recsys-test" + (str(SLOT) if SLOT else ""))),
    "RECSYS_TOOLS_DIR": os.environ.get("RECSYS_TOOLS_DIR") or str(ROOT / ".recsys" / "stack" / "tools"),
    "RECSYS_KAFKA_PORT": str(19092 + 10 * SLOT),
    "RECSYS_KAFKA_CONTROLLER_PORT": str(19093 + 10 * SLOT),
    "RECSYS_MONGO_PORT": str(27117 + 10 * SLOT),
    "RECSYS_POSTGRES_PORT": str(15432 + 10 * SLOT),
    "RECSYS_API_PORT": str(18000 + 10 * SLOT),
    "RECSYS_DAGSTER_PORT": str(13000 + 10 * SLOT),
    "RECSYS_SPARK_DRIVER_MEMORY": "2g",
    # The suite's Spark sessions run on a real standalone cluster, two workers of one core, so that
    # every test proves the code runs on executors; RECSYS_TEST_SPARK_WORKERS=0 runs them in-process.
    "RECSYS_SPARK_WORKERS": os.environ.get("RECSYS_TEST_SPARK_WORKERS", "2"),
    # The suite's Spark JVMs live minutes on small data: C2's optimising compiles cost them more CPU
    # than the code they speed up (docs: README, Tests), so they stop at the C1 compiler.
    "RECSYS_SPARK_JAVA_OPTIONS": "-XX:TieredStopAtLevel=1",
    "RECSYS_SPARK_MASTER_PORT": str(17077 + 10 * SLOT),
    "RECSYS_SPARK_WEBUI_PORT": str(16080 + 10 * SLOT),
}
# Tests talk to their own local servers, never to servers named in the caller's environment.
for _name in (
    "RECSYS_KAFKA_BOOTSTRAP",
    "RECSYS_MONGO_URI",
    "RECSYS_API_KEYS",
    "RECSYS_API_READ_KEYS",
    "RECSYS_MONGO_DB",
    "RECSYS_TOPIC_PREFIX",
    "RECSYS_SPARK_MASTER",
):
    os.environ.pop(_name, None)
os.environ.update(TEST_ENV)

from recsys_core.settings import Settings  # noqa: E402  (after the environment is set)


@pytest.fixture(scope="session")
def base_settings() -> Settings:
    return Settings.from_env()


@pytest.fixture(scope="session")
def stack(base_settings: Settings):
    """The test stack, started fresh once per session and stopped at the end."""
    from recsys_stack import manager

    manager.down(base_settings)
    for sub in ("lake", "models", "checkpoints", "stack", "spark"):
        shutil.rmtree(base_settings.data_dir / sub, ignore_errors=True)
    manager.up(base_settings)
    yield base_settings
    if not os.environ.get("RECSYS_TEST_KEEP_STACK"):
        manager.down(base_settings)


@pytest.fixture
def settings(stack: Settings, request) -> Settings:
    """Settings with topics, a Mongo database and a lake of the test's own, so tests cannot see each other."""
    from tests.support.isolation import isolated, release

    own = isolated(stack, request.node.name)
    yield own
    release(own)


@pytest.fixture
def mongo_db(settings: Settings):
    from recsys_io.mongo import mongo_client, serving_db

    client = mongo_client(settings)
    yield serving_db(client, settings)
    client.close()


@pytest.fixture(scope="session")
def spark(stack: Settings):
    """One SparkSession for the whole session (starting a JVM costs seconds)."""
    from recsys_io.spark import get_spark

    session = get_spark(stack, "recsys-tests")
    yield session
    session.stop()


@pytest.fixture
def unique() -> str:
    """A short unique token for ids, so two runs of a test never share them."""
    return uuid.uuid4().hex[:10]
