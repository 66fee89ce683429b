"""Where a record lands in the lake (the day events_landing and raw_events share) and the sink's lag."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

from recsys_core.landing import lag_minutes, landing_day, records_behind

FIRST = date(2026, 1, 1)
ARRIVAL = datetime(2026, 6, 10, 12, tzinfo=UTC)
MS = int(ARRIVAL.timestamp() * 1000)


def value(**fields) -> str:
    return json.dumps({"type": "product_view", "user_id": "u", "product_id": "p", **fields})


def test_an_event_lands_in_the_day_of_its_own_time_even_days_late():
    assert landing_day(value(ts="2026-06-01T23:59:00+00:00"), MS, FIRST) == date(2026, 6, 1)
    assert landing_day(value(ts="2026-06-02T00:30:00+02:00"), MS, FIRST) == date(2026, 6, 1)


def test_a_clickstream_event_lands_in_the_day_of_its_epoch_timestamp():
    raw = {"event": "ProductView", "messageid": "m", "userid": "u", "properties": {"productid": "p"}}
    stamp = datetime(2026, 6, 3, 8, tzinfo=UTC).timestamp()
    assert landing_day(json.dumps({**raw, "timestamp": stamp}), MS, FIRST) == date(2026, 6, 3)


def test_an_invalid_event_with_a_readable_ts_lands_in_that_day():
    assert landing_day(value(type="rating", score=9, ts="2026-06-05T10:00:00Z"), MS, FIRST) == date(2026, 6, 5)


def test_records_the_lake_cannot_place_by_their_time_land_on_their_arrival_day():
    for raw in ("not json", "[1, 2]", None, value(ts="9999-12-31T00:00:00Z"), value(ts="yesterday"), value()):
        assert landing_day(raw, MS, FIRST) == ARRIVAL.date()
    assert landing_day(value(ts="2025-12-31T10:00:00Z"), MS, FIRST) == ARRIVAL.date()


def test_a_record_that_arrived_before_the_lakes_first_day_lands_on_the_first_day():
    early = int(datetime(2025, 12, 20, tzinfo=UTC).timestamp() * 1000)
    assert landing_day("not json", early, FIRST) == FIRST


def test_the_lag_is_the_wait_of_the_oldest_record_not_landed():
    assert records_behind({0: 10, 1: 5}, {0: 10, 1: 8, 2: 3}) == {1: 3, 2: 3}
    assert records_behind({0: 10}, {0: 10}) == {}
    waiting = {1: ARRIVAL - timedelta(minutes=20), 2: ARRIVAL - timedelta(minutes=3)}
    assert lag_minutes(waiting, ARRIVAL) == 20
    assert lag_minutes({}, ARRIVAL) == 0
