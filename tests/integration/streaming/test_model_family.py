"""The speed layer with a promoted model it cannot score with: it keeps running on the no-model path."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import pytest

from recsys_io.mongo import MODELS
from streaming.model import ModelCache, stream_factors_dir
from tests.support.stream import write_model

pytestmark = pytest.mark.integration


def test_a_promoted_ease_version_sends_realtime_scoring_to_the_no_model_path(settings, spark, mongo_db, caplog):
    write_model(spark, settings, mongo_db, "als-1", {"p1": [1.0, 0.0]}, {"u1": [1.0, 0.0]})
    cache = ModelCache(spark, settings)
    assert cache.current(mongo_db).version == "als-1"
    later = datetime.now(UTC) + timedelta(seconds=1)
    mongo_db[MODELS].insert_one(
        {
            "_id": "ease-2",
            "version": "ease-2",
            "family": "ease",
            "checks_passed": True,
            "promoted": True,
            "promoted_at": later,
            "created_at": later,
            "path": str(settings.models_dir / "als" / "ease-2"),
        }
    )
    with caplog.at_level(logging.WARNING, logger="recsys.stream"):
        assert cache.current(mongo_db) is None
        assert cache.current(mongo_db) is None
    [record] = [r for r in caplog.records if "ease-2" in r.getMessage()]
    assert "no-model path" in record.getMessage()
    mongo_db[MODELS].update_one({"_id": "als-1"}, {"$set": {"promoted_at": later + timedelta(seconds=1)}})
    assert cache.current(mongo_db).version == "als-1"


def test_the_stream_keeps_copies_of_the_current_and_the_previous_model_only(settings, spark, mongo_db):
    cache = ModelCache(spark, settings)
    start = datetime.now(UTC)
    for n in range(1, 4):
        at = start + timedelta(seconds=n)
        write_model(spark, settings, mongo_db, f"als-{n}", {"p1": [1.0, 0.0]}, {"u1": [1.0, 0.0]}, promoted_at=at)
        assert cache.current(mongo_db).version == f"als-{n}"
    assert sorted(p.name for p in (settings.models_dir / "stream").iterdir()) == ["als-2", "als-3"]
    assert stream_factors_dir(settings, "als-3").is_dir()
