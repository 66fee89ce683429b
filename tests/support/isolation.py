"""Each test (or module) owns its topics, serving database and lake on the one test stack.

A test's settings differ from the stack's only in `topic_prefix`, `mongo_db` and `data_dir`, so a
test that reads its topics from the start sees only its own records, whatever ran before it.
"""

from __future__ import annotations

import dataclasses
import os
import re
import subprocess
import sys
import uuid
from pathlib import Path

from kafka import TopicPartition

from recsys_core.settings import Settings
from recsys_io.kafka import end_offsets, ensure_topics, make_admin
from recsys_io.mongo import mongo_client


def isolated(stack: Settings, name: str) -> Settings:
    """Settings naming fresh topics (created now), database and lake for `name`."""
    token = f"{re.sub(r'[^a-zA-Z0-9]', '_', name)[:40]}_{uuid.uuid4().hex[:6]}"
    own = dataclasses.replace(
        stack, topic_prefix=f"t.{token}.", mongo_db=f"t_{token}", data_dir=stack.data_dir / "cases" / token
    )
    ensure_topics(own)
    return own


def release(settings: Settings) -> None:
    """Delete what `isolated` made on the servers (the lake stays for a post-mortem until the next run)."""
    admin = make_admin(settings)
    try:
        admin.delete_topics([t for t in admin.list_topics() if t.startswith(settings.topic_prefix)])
    finally:
        admin.close()
    client = mongo_client(settings)
    try:
        client.drop_database(settings.mongo_db)
    finally:
        client.close()


def truncate(settings: Settings, topic: str) -> None:
    """Delete every record `topic` holds now, as its retention (or an operator) would."""
    admin = make_admin(settings)
    try:
        admin.delete_records({TopicPartition(topic, p): end for p, end in end_offsets(settings, topic).items()})
    finally:
        admin.close()


def env_of(settings: Settings) -> dict[str, str]:
    """The variables that make a child process (a CLI command, a server) use these settings."""
    return {
        "RECSYS_DATA_DIR": str(settings.data_dir),
        "RECSYS_MONGO_DB": settings.mongo_db,
        "RECSYS_TOPIC_PREFIX": settings.topic_prefix,
    }


def recsys_process(settings: Settings, command: str, log: Path, **env: str) -> subprocess.Popen:
    """`recsys COMMAND` as a process of its own under `settings` (plus `env`), its output appended to `log`.

    A session of its own: SIGKILL of its group takes the JVM down with it, like a machine failure.
    """
    return subprocess.Popen(
        [str(Path(sys.executable).with_name("recsys")), command],
        env={**os.environ, **env_of(settings), **env},
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
