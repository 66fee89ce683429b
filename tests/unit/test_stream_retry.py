"""Waiting out a server that is down (streaming.retry): no server needed, failures are simulated."""

from __future__ import annotations

import logging
import threading

import pytest
from pymongo.errors import ServerSelectionTimeoutError

from streaming import retry
from streaming.retry import StopRequested, with_backoff


@pytest.fixture(autouse=True)
def fast_backoff(monkeypatch):
    monkeypatch.setattr(retry, "FIRST_DELAY", 0.01)


def flaky(failures: int):
    calls = []

    def action():
        calls.append(1)
        if len(calls) <= failures:
            raise ServerSelectionTimeoutError("mongo is down")
        return "written"

    return action, calls


def test_write_is_retried_until_the_server_is_back_and_the_wait_is_logged(caplog):
    caplog.set_level(logging.INFO, "recsys.stream")
    action, calls = flaky(3)
    assert with_backoff(action, "batch 7: writing to MongoDB", threading.Event()) == "written"
    assert len(calls) == 4
    assert "batch 7: writing to MongoDB failed (ServerSelectionTimeoutError" in caplog.text
    assert "succeeded after 3 failed attempts" in caplog.text


def test_shutdown_during_an_outage_abandons_the_batch_so_it_replays():
    action, _ = flaky(1000)
    stopping = threading.Event()
    threading.Timer(0.05, stopping.set).start()
    with pytest.raises(StopRequested):
        with_backoff(action, "batch 8", stopping)


def test_a_bug_is_not_retried():
    def broken():
        raise KeyError("product_id")

    with pytest.raises(KeyError):
        with_backoff(broken, "batch 9", threading.Event())


def test_a_task_gives_up_after_its_patience_so_spark_can_run_it_again():
    action, calls = flaky(1000)
    with pytest.raises(ServerSelectionTimeoutError):
        with_backoff(action, "batch 10, partition 0", give_up_after=0.1)
    assert 1 < len(calls) < 1000
