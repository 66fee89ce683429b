"""Online metrics' rules without a server: the figures of a group, run totals, the days a reader asks for,
the attribution lookback, which model an experiment's decision promotes, and the executors' form of attribution."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta

import pytest
from pyspark.sql import Row

from recsys_assets.records import EPOCH, attributed_row, shopper_attributions
from recsys_core.attribution import attributed_purchases
from recsys_core.experiments import ExperimentError, parse_experiment, winning_model_version
from recsys_core.online_metrics import DayRangeError, ListCounts, day_range, lookback_days, metric_figures, totals

NOW = datetime(2026, 12, 1, 12, tzinfo=UTC)


def test_figures_are_ctr_per_product_shown_conversion_per_list_and_coverage_of_the_catalog():
    figures = metric_figures(ListCounts(4, 20, 10, 3, 1, 19.0), catalog_size=40)
    assert figures == {
        "lists": 4,
        "products_shown": 20,
        "clicks": 3,
        "ctr": 3 / 20,
        "orders": 1,
        "conversion": 1 / 4,
        "revenue": 19.0,
        "coverage": 10 / 40,
    }


def test_a_group_without_lists_or_catalog_has_zero_rates_not_an_error():
    figures = metric_figures(ListCounts(0, 0, 0, 2, 1, 0.0), catalog_size=0)
    assert (figures["ctr"], figures["conversion"], figures["coverage"]) == (0.0, 0.0, 0.0)


def test_totals_recompute_rates_from_summed_counts():
    rows = [
        metric_figures(ListCounts(2, 10, 5, 1, 1, 5.0), 10),
        metric_figures(ListCounts(2, 30, 5, 5, 0, 0.0), 10),
    ]
    assert totals(rows) == {"lists": 4, "clicks": 6, "ctr": 6 / 40, "orders": 1, "conversion": 1 / 4}


def test_day_range_names_the_field_that_is_wrong():
    assert day_range("2026-11-01", "2026-11-02") == (date(2026, 11, 1), date(2026, 11, 2))
    for first, last, field in [
        (None, "2026-11-02", "from"),
        ("2026-11-01", "yesterday", "to"),
        ("2026-13-01", "2026-11-02", "from"),
        ("2026-11-03", "2026-11-02", "to"),
        ("2026-01-01", "2027-06-01", "to"),
    ]:
        with pytest.raises(DayRangeError) as error:
            day_range(first, last)
        assert error.value.field == field


def test_the_lookback_covers_the_whole_window_in_days():
    assert lookback_days(timedelta(hours=24)) == 1
    assert lookback_days(timedelta(hours=25)) == 2
    assert lookback_days(timedelta(hours=1)) == 1


def experiment(*variants):
    return parse_experiment("home", {"surface": "recommendations", "variants": list(variants)}, NOW)


def test_the_winning_model_variant_is_what_gets_promoted():
    e = experiment({"name": "a", "share": 0.5, "strategy": "model"}, {"name": "b", "share": 0.5, "model_version": "v2"})
    assert winning_model_version(e, "winner: b") == "v2"


@pytest.mark.parametrize("decision", [None, "no difference yet", "winner: a", "winner: z"])
def test_promotion_is_refused_without_a_model_winner(decision):
    e = experiment({"name": "a", "share": 0.5, "strategy": "model"}, {"name": "b", "share": 0.5, "model_version": "v2"})
    with pytest.raises(ExperimentError) as error:
        winning_model_version(e, decision)
    assert error.value.field == "decision"


def random_events(rng: random.Random) -> list[dict]:
    events = []
    for n in range(300):
        user, product = f"u{rng.randrange(4)}", f"p{rng.randrange(5)}"
        ts = NOW + timedelta(minutes=rng.randrange(3 * 24 * 60))
        if rng.random() < 0.6:
            events.append({"type": "click", "user_id": user, "product_id": product, "rec_id": f"r{n}", "ts": ts})
        else:
            items = [{"product_id": product, "quantity": rng.randrange(1, 3), "price": rng.choice([None, 2.5])}]
            events.append({"type": "purchase", "user_id": user, "order_id": f"o{n}", "items": items, "ts": ts})
    return events


def as_row(event: dict) -> Row:
    items = [Row(**item) for item in event.get("items", [])] or None
    return Row(
        user_id=event["user_id"],
        type=event["type"],
        ts_us=(event["ts"] - EPOCH) // timedelta(microseconds=1),
        product_id=event.get("product_id"),
        rec_id=event.get("rec_id"),
        order_id=event.get("order_id"),
        items=items,
    )


def test_the_executors_form_attributes_exactly_what_the_rule_does_on_random_events():
    rng = random.Random(11)
    window = timedelta(hours=20)
    events = random_events(rng)
    ordered = sorted(events, key=lambda e: (e["user_id"], e["ts"]))  # as the asset sorts a task's rows
    got = sorted(shopper_attributions(map(as_row, ordered), window))
    want = sorted(map(attributed_row, attributed_purchases(events, window)))
    assert got == want and len(want) > 20
