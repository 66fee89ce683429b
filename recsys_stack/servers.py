"""The local servers: Apache Kafka (KRaft, single node), a MongoDB-wire server, PostgreSQL when
FerretDB keeps its documents there (RECSYS_FERRETDB_BACKEND=postgresql) and, when
RECSYS_SPARK_WORKERS asks for it, a Spark standalone master with its workers.

Each server knows how to provision itself, start, tell whether it answers and describe itself.
All bind to 127.0.0.1 and keep their data under RECSYS_DATA_DIR/stack, so it survives down/up.
"""

from __future__ import annotations

import base64
import importlib.util
import os
import pwd
import shutil
import signal
import subprocess
import time
import uuid
from pathlib import Path

from recsys_core.settings import Settings
from recsys_io.kafka import kafka_ping
from recsys_io.mongo import mongo_ping
from recsys_io.spark import spark_master_state
from recsys_stack import provision
from recsys_stack.processes import ManagedProcess

KAFKA_LOG4J = """\
status = warn
appender.console.type = Console
appender.console.name = STDOUT
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = info
rootLogger.appenderRef.stdout.ref = STDOUT
logger.kafka.name = kafka
logger.kafka.level = warn
logger.apache.name = org.apache.kafka
logger.apache.level = warn
logger.server.name = kafka.server.KafkaRaftServer
logger.server.level = info
"""


class Server:
    """A server the stack may run; subclasses say how."""

    port_variable = ""
    kind = ""

    def __init__(self, name: str, settings: Settings):
        self.name = name
        self.settings = settings

    @property
    def process(self) -> ManagedProcess:
        return ManagedProcess(self.name, self.settings.stack_dir)

    @property
    def is_local(self) -> bool:
        raise NotImplementedError

    @property
    def address(self) -> str:
        raise NotImplementedError

    @property
    def ports(self) -> tuple[int, ...]:
        raise NotImplementedError

    def provision(self) -> None:
        raise NotImplementedError

    def start(self) -> int:
        raise NotImplementedError

    def answers(self) -> bool:
        raise NotImplementedError

    def stop(self) -> bool:
        """Stop the process `start` started; whether there was one."""
        return self.process.stop()


class KafkaServer(Server):
    port_variable = "RECSYS_KAFKA_PORT"
    kind = "Apache Kafka 4.2 (KRaft)"

    def __init__(self, settings: Settings):
        super().__init__("kafka", settings)

    @property
    def is_local(self) -> bool:
        return self.settings.kafka_is_local

    @property
    def address(self) -> str:
        return self.settings.kafka_servers

    @property
    def ports(self) -> tuple[int, ...]:
        return (self.settings.kafka_port, self.settings.kafka_controller_port)

    @property
    def home(self) -> Path:
        return self.settings.stack_dir / "kafka"

    def provision(self) -> None:
        provision.provision_kafka(self.settings)

    def _write_config(self) -> Path:
        s = self.settings
        self.home.mkdir(parents=True, exist_ok=True)
        (self.home / "log4j2.properties").write_text(KAFKA_LOG4J)
        config = self.home / "server.properties"
        config.write_text(
            "\n".join(
                [
                    "process.roles=broker,controller",
                    "node.id=1",
                    f"controller.quorum.voters=1@127.0.0.1:{s.kafka_controller_port}",
                    f"listeners=PLAINTEXT://127.0.0.1:{s.kafka_port},CONTROLLER://127.0.0.1:{s.kafka_controller_port}",
                    f"advertised.listeners=PLAINTEXT://127.0.0.1:{s.kafka_port}",
                    "controller.listener.names=CONTROLLER",
                    "inter.broker.listener.name=PLAINTEXT",
                    "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
                    f"log.dirs={self.home / 'data'}",
                    "num.partitions=1",
                    "auto.create.topics.enable=false",
                    "offsets.topic.replication.factor=1",
                    "offsets.topic.num.partitions=4",
                    "transaction.state.log.replication.factor=1",
                    "transaction.state.log.min.isr=1",
                    "share.coordinator.state.topic.replication.factor=1",
                    "share.coordinator.state.topic.min.isr=1",
                    "group.initial.rebalance.delay.ms=0",
                    # A buffer, not the record: the sink lands every event in the lake (events_landing).
                    f"log.retention.hours={s.kafka_retention_hours}",
                    "log.segment.bytes=134217728",
                    "num.network.threads=2",
                    "num.io.threads=2",
                    "",
                ]
            )
        )
        return config

    def _java(self, main: str, *args: str) -> list[str]:
        java = provision.require_tool("java")
        return [
            java,
            f"-Xmx{self.settings.kafka_heap}",
            f"-Xms{self.settings.kafka_heap}",
            "-XX:+UseG1GC",
            "-XX:MaxGCPauseMillis=20",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={self.home / 'log4j2.properties'}",
            f"-Dkafka.logs.dir={self.settings.stack_dir / 'logs'}",
            "-cp",
            f"{self.settings.kafka_jars_dir}/*",
            main,
            *args,
        ]

    def start(self) -> int:
        config = self._write_config()
        if not (self.home / "data" / "meta.properties").exists():
            cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
            # `--cluster-id=`: an id that starts with "-" (1 in 64) would otherwise read as an option.
            result = subprocess.run(
                self._java(
                    "kafka.tools.StorageTool",
                    "format",
                    f"--cluster-id={cluster_id}",
                    "--config",
                    str(config),
                    "--ignore-formatted",
                ),
                capture_output=True,
                text=True,
            )
            if result.returncode != 0:
                raise provision.ProvisionError(f"formatting Kafka storage failed:\n{result.stdout}\n{result.stderr}")
        return self.process.start(self._java("kafka.Kafka", str(config)), cwd=self.home)

    def answers(self) -> bool:
        return kafka_ping(self.settings)


class PostgresServer(Server):
    """The PostgreSQL server FerretDB keeps its documents in when RECSYS_FERRETDB_BACKEND=postgresql."""

    port_variable = "RECSYS_POSTGRES_PORT"
    kind = "PostgreSQL (FerretDB's storage)"
    database = "postgres"  # initdb's own database: FerretDB makes a schema in it per MongoDB database

    def __init__(self, settings: Settings):
        super().__init__("postgres", settings)

    @property
    def process(self) -> ManagedProcess:
        # SIGTERM is PostgreSQL's "smart" shutdown, which waits for every client to leave; SIGINT
        # rolls back what is open and stops at once, cleanly.
        return ManagedProcess(self.name, self.settings.stack_dir, stop_signal=signal.SIGINT)

    @property
    def is_local(self) -> bool:
        return True  # only listed when the local FerretDB runs on it

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.settings.postgres_port}"

    @property
    def url(self) -> str:
        return f"postgres://postgres@{self.address}/{self.database}"

    @property
    def ports(self) -> tuple[int, ...]:
        return (self.settings.postgres_port,)

    @property
    def home(self) -> Path:
        return self.settings.stack_dir / "postgres"

    @property
    def user(self) -> str | None:
        """PostgreSQL refuses to run as root: as root it runs as the `postgres` user its package made."""
        if os.geteuid() != 0:
            return None
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            raise provision.ProvisionError(
                "PostgreSQL does not run as root and there is no `postgres` user to run it as: "
                f"{provision.INSTALL_HINTS['postgres']} (it creates that user)."
            ) from None
        return "postgres"

    def provision(self) -> None:
        provision.postgres_bin_dir()

    def _owned(self, path: Path) -> Path:
        path.mkdir(parents=True, exist_ok=True)
        if self.user:
            shutil.chown(path, self.user, self.user)
        return path

    def _initdb(self, data: Path) -> None:
        # Into a directory of its own, renamed when complete, so an interrupted initdb is redone.
        fresh = self.home / "data.initdb"
        shutil.rmtree(fresh, ignore_errors=True)
        self._owned(fresh)
        # Trust on 127.0.0.1 and a socket in the stack's directory: like Kafka and FerretDB, it
        # serves only this machine's platform.
        result = subprocess.run(
            [
                str(provision.postgres_bin_dir() / "initdb"),
                "-D",
                str(fresh),
                "-U",
                "postgres",
                "--auth=trust",
                "--encoding=UTF8",
                "--no-locale",
            ],
            capture_output=True,
            text=True,
            user=self.user,
        )
        if result.returncode != 0:
            raise provision.ProvisionError(f"initdb into {fresh} failed:\n{result.stdout}\n{result.stderr}")
        fresh.rename(data)

    def start(self) -> int:
        self._owned(self.home)
        if self.user and subprocess.run(["test", "-w", str(self.home)], user=self.user).returncode != 0:
            raise provision.ProvisionError(
                f"PostgreSQL runs as the `{self.user}` user, which cannot reach {self.home}: let it through "
                f"the directories above it (chmod o+x) or set RECSYS_DATA_DIR to a directory it can reach."
            )
        data = self.home / "data"
        if not (data / "PG_VERSION").exists():
            self._initdb(data)
        socket_dir = self._owned(self.home / "socket")
        # synchronous_commit=off: a commit no longer waits for its fsync; a crash can lose the
        # commits of the last 3 x wal_writer_delay (300 ms), as MongoDB's default journal (flushed
        # every 100 ms) can, and never leaves the data inconsistent. It is what the SQLite backend's
        # synchronous=NORMAL spares too.
        return self.process.start(
            [
                str(provision.postgres_bin_dir() / "postgres"),
                "-D",
                str(data),
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                f"port={self.settings.postgres_port}",
                "-c",
                f"unix_socket_directories={socket_dir}",
                "-c",
                "synchronous_commit=off",
                "-c",
                "wal_writer_delay=100ms",
            ],
            user=self.user,
        )

    def answers(self) -> bool:
        try:
            pg_isready = provision.postgres_bin_dir() / "pg_isready"
        except provision.ProvisionError:
            return False
        result = subprocess.run(
            [
                str(pg_isready),
                "-q",
                "-h",
                "127.0.0.1",
                "-p",
                str(self.settings.postgres_port),
                "-d",
                self.database,
                "-U",
                "postgres",
                "-t",
                "2",
            ],
            capture_output=True,
        )
        return result.returncode == 0


# FerretDB turns every document into JSON and back several times per write, and Go's collector
# took a quarter of its CPU: collecting at 8x the live heap instead of 2x cut its CPU per
# replaced document by a third (RSS ~150 -> ~460 MB under the speed layer's load); the soft
# limit makes it collect harder before it would pass 2 GiB.
FERRETDB_GO_ENV = {"GOGC": "800", "GOMEMLIMIT": "2GiB"}


class MongoServer(Server):
    port_variable = "RECSYS_MONGO_PORT"

    def __init__(self, settings: Settings):
        super().__init__("mongo", settings)

    @property
    def is_local(self) -> bool:
        return self.settings.mongo_is_local

    @property
    def address(self) -> str:
        return self.settings.mongo_url

    @property
    def ports(self) -> tuple[int, ...]:
        return (self.settings.mongo_port,)

    @property
    def mongod(self) -> str | None:
        return shutil.which("mongod")

    @property
    def on_postgres(self) -> bool:
        """FerretDB runs here and keeps its documents in the stack's PostgreSQL server."""
        return self.is_local and not self.mongod and self.settings.ferretdb_backend == "postgresql"

    @property
    def kind(self) -> str:
        if self.mongod:
            return "mongod"
        return f"FerretDB 1.24 ({'PostgreSQL' if self.settings.ferretdb_backend == 'postgresql' else 'SQLite'})"

    def provision(self) -> None:
        if not self.mongod:
            provision.provision_ferretdb(self.settings)

    def start(self) -> int:
        port = str(self.settings.mongo_port)
        if self.mongod:
            data = self.settings.stack_dir / "mongod"
            data.mkdir(parents=True, exist_ok=True)
            return self.process.start(
                [self.mongod, "--dbpath", str(data), "--bind_ip", "127.0.0.1", "--port", port, "--quiet"]
            )
        data = self.settings.stack_dir / "ferretdb"
        data.mkdir(parents=True, exist_ok=True)
        common = [
            f"--listen-addr=127.0.0.1:{port}",
            "--debug-addr=-",
            f"--state-dir={data}",
            "--telemetry=disable",
            "--log-level=warn",
        ]
        if self.on_postgres:
            return self.process.start(
                [
                    str(self.settings.ferretdb_binary),
                    "--handler=postgresql",
                    f"--postgresql-url={PostgresServer(self.settings).url}",
                    *common,
                ],
                env=FERRETDB_GO_ENV,
            )
        # WAL with synchronous=NORMAL: a commit survives FerretDB crashing, and only an OS crash or
        # power loss can undo the last commits, as with MongoDB's default (journal flushed every
        # 100 ms). It spares an fsync per write: a third of the speed layer's history writes.
        # The log is checkpointed every 1,000 pages (SQLite's default) and restarts from its
        # beginning once a checkpoint is complete: the patched `update` (provision.py) no longer
        # holds a read open across its write, which kept the log growing without bound.
        return self.process.start(
            [
                str(self.settings.ferretdb_binary),
                "--handler=sqlite",
                f"--sqlite-url=file:{data}/?_pragma=synchronous(normal)",
                *common,
            ],
            env=FERRETDB_GO_ENV,
        )

    def answers(self) -> bool:
        return mongo_ping(self.settings)


def spark_home() -> Path:
    """The installed pyspark: it carries Spark's jars and `bin/spark-class`, the same Spark the drivers run."""
    spec = importlib.util.find_spec("pyspark")  # found, not imported: `stack status` starts no JVM
    if spec is None or spec.origin is None:
        raise provision.ProvisionError("pyspark is not installed in this environment: run `make install`.")
    return Path(spec.origin).parent


class SparkServer(Server):
    """A Spark standalone daemon from the installed pyspark, bound to 127.0.0.1 like every server here."""

    port_variable = "RECSYS_SPARK_MASTER_PORT"
    main_class = ""

    @property
    def is_local(self) -> bool:
        return self.settings.spark_cluster_is_local

    @property
    def home(self) -> Path:
        return self.settings.stack_dir / self.name

    def provision(self) -> None:
        provision.require_tool("java")
        spark_home()

    def properties(self) -> dict[str, str]:
        raise NotImplementedError

    def arguments(self) -> list[str]:
        raise NotImplementedError

    def start(self) -> int:
        self.home.mkdir(parents=True, exist_ok=True)
        # Written on each start; its path on the command line also marks the process as this stack's.
        config = self.home / "spark.properties"
        config.write_text("".join(f"{key}={value}\n" for key, value in self.properties().items()))
        home = spark_home()
        env = {
            "SPARK_HOME": str(home),
            "SPARK_CONF_DIR": str(self.home),  # no spark-env.sh or defaults from elsewhere
            # Spark binds its web UIs, and executors their block managers, to this address.
            "SPARK_LOCAL_IP": "127.0.0.1",
            "SPARK_LOCAL_DIRS": str(self.home / "tmp"),
            "SPARK_DAEMON_MEMORY": "256m",  # the master and workers only keep accounts; executors do the work
        }
        return self.process.start(
            [
                str(home / "bin" / "spark-class"),
                self.main_class,
                "--host",
                "127.0.0.1",
                "--properties-file",
                str(config),
                *self.arguments(),
            ],
            env=env,
            cwd=self.home,
        )


class SparkMasterServer(SparkServer):
    main_class = "org.apache.spark.deploy.master.Master"

    def __init__(self, settings: Settings):
        super().__init__("spark-master", settings)

    @property
    def kind(self) -> str:
        return f"Spark 4.2 standalone master, UI http://127.0.0.1:{self.settings.spark_webui_port}"

    @property
    def address(self) -> str:
        return self.settings.local_spark_master

    @property
    def ports(self) -> tuple[int, ...]:
        return (self.settings.spark_master_port, self.settings.spark_webui_port)

    def properties(self) -> dict[str, str]:
        # The master keeps its applications and workers on disk: after `stack down` and `up`, a driver
        # that stayed up (a notebook, the test session) registers again and gets executors from the new
        # workers, instead of waiting for ever on a master that no longer knows it.
        return {
            "spark.master.rest.enabled": "false",
            "spark.deploy.recoveryMode": "FILESYSTEM",
            "spark.deploy.recoveryDirectory": str(self.home / "recovery"),
        }

    def arguments(self) -> list[str]:
        return ["--port", str(self.settings.spark_master_port), "--webui-port", str(self.settings.spark_webui_port)]

    def answers(self) -> bool:
        state = spark_master_state(self.settings)
        return state is not None and state.get("status") == "ALIVE"


class SparkWorkerServer(SparkServer):
    main_class = "org.apache.spark.deploy.worker.Worker"

    def __init__(self, settings: Settings, index: int):
        super().__init__(f"spark-worker-{index}", settings)
        self.index = index

    @property
    def kind(self) -> str:
        s = self.settings
        return f"Spark 4.2 worker, {s.spark_worker_cores} core(s), {s.spark_worker_memory}"

    @property
    def port(self) -> int:
        return self.settings.spark_master_port + self.index

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def ports(self) -> tuple[int, ...]:
        return (self.port, self.settings.spark_webui_port + self.index)

    def properties(self) -> dict[str, str]:
        # Each application leaves its jars and logs in the work directory: drop those of finished ones after a day.
        return {
            "spark.worker.cleanup.enabled": "true",
            "spark.worker.cleanup.interval": "3600",
            "spark.worker.cleanup.appDataTtl": "86400",
        }

    def arguments(self) -> list[str]:
        s = self.settings
        return [
            "--port",
            str(self.port),
            "--webui-port",
            str(self.ports[1]),
            "--cores",
            str(s.spark_worker_cores),
            "--memory",
            s.spark_worker_memory,
            "--work-dir",
            str(self.home / "work"),
            s.local_spark_master,
        ]

    def answers(self) -> bool:
        """Registered with the master and alive there: only then can it take executors."""
        state = spark_master_state(self.settings) or {}
        return any(
            worker.get("host") == "127.0.0.1" and worker.get("port") == self.port and worker.get("state") == "ALIVE"
            for worker in state.get("workers", [])
        )

    def stop(self) -> bool:
        stopped = super().stop()
        # Wait (briefly) until the master has let this worker go: a master stopped right after would
        # remember it, and after the next `up` hold every driver back until it gave up on it (60 s).
        deadline = time.monotonic() + 10
        while stopped and self.answers() and time.monotonic() < deadline:
            time.sleep(0.2)
        return stopped


def spark_cluster(settings: Settings) -> list[Server]:
    if not settings.spark_cluster_is_local:
        return []
    return [
        SparkMasterServer(settings),
        *(SparkWorkerServer(settings, index) for index in range(1, settings.spark_workers + 1)),
    ]


def servers(settings: Settings) -> list[Server]:
    """The stack's servers in start order (`down` stops them in reverse): PostgreSQL before FerretDB."""
    mongo = MongoServer(settings)
    return [
        KafkaServer(settings),
        *([PostgresServer(settings)] if mongo.on_postgres else []),
        mongo,
        *spark_cluster(settings),
    ]
