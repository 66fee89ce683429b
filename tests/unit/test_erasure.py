"""Erasing a shopper: the event, the key an erasure is recorded by, which events it removes."""

from __future__ import annotations

import hashlib
from datetime import UTC, date, datetime, timedelta

import pytest

from recsys_core.erasure import PENDING, erased_before, erasure_answer, user_erasure_event, user_hash
from recsys_core.events import InvalidEvent, changes_shopper_state, parse_event

NOW = datetime(2026, 11, 22, 12, 0, 0, tzinfo=UTC)
FIRST_DAY = date(2026, 1, 1)


def test_erasure_event_is_internal_and_names_the_trimmed_shopper():
    event = user_erasure_event("  u1 ", NOW, first_day=FIRST_DAY)
    assert (event["type"], event["user_id"], event["ts"]) == ("user_erasure", "u1", "2026-11-22T12:00:00.000Z")
    assert not changes_shopper_state(event)
    with pytest.raises(InvalidEvent) as refused:
        parse_event({"type": "user_erasure", "user_id": "u1"}, NOW, first_day=FIRST_DAY)
    assert [e.field for e in refused.value.errors] == ["type"]


def test_erasure_of_a_blank_or_long_id_is_refused_naming_user_id():
    for bad in ("  ", "u" * 129):
        with pytest.raises(InvalidEvent) as refused:
            user_erasure_event(bad, NOW, first_day=FIRST_DAY)
        assert [e.field for e in refused.value.errors] == ["user_id"]


def test_an_erasure_is_recorded_by_the_ids_sha256_not_the_id():
    assert user_hash("u1") == hashlib.sha256(b"u1").hexdigest()
    assert "u1" not in user_hash("u1") and len(user_hash("u1")) == 64


def test_events_at_or_before_the_erasure_go_and_later_ones_stay():
    assert erased_before(NOW - timedelta(days=3), NOW)
    assert erased_before(NOW, NOW)  # the erasure event itself
    assert erased_before(None, NOW)  # no readable time: it cannot be shown to be later
    assert not erased_before(NOW + timedelta(milliseconds=1), NOW)
    assert not erased_before(NOW - timedelta(days=3), None)  # never erased


def test_the_answer_says_what_went_now_and_what_the_next_runs_remove():
    answer = erasure_answer("u1", ["history"])
    assert answer == {"user_id": "u1", "erased": ["history"], "pending": list(PENDING)}
    assert "raw_events" in answer["pending"] and "events_landing" in answer["pending"]
