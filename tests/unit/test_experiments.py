"""Experiments' rules without a server: definitions, stable assignment, the z-test and the verdict."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

import pytest

from recsys_core.experiments import (
    ExperimentError,
    Variant,
    VariantCounts,
    assign,
    experiment_results,
    parse_experiment,
    significantly_worse,
    two_proportion_test,
)

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
HALVES = (Variant("a", 0.5, "bestsellers"), Variant("b", 0.5, "model"))


def body(**overrides):
    return {
        "surface": "recommendations",
        "variants": [
            {"name": "a", "share": 0.5, "strategy": "bestsellers"},
            {"name": "b", "share": 0.5, "strategy": "model"},
        ],
        **overrides,
    }


def test_a_definition_parses_with_its_variants_and_starts_now():
    experiment = parse_experiment("home", body(ends_at="2026-12-31T00:00:00Z"), NOW)
    assert experiment.variants == HALVES and experiment.starts_at == NOW
    assert experiment.is_running(NOW) and not experiment.is_running(datetime(2027, 1, 1, tzinfo=UTC))


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"surface": "history"}, "surface"),
        ({"variants": [{"name": "a", "share": 1.0, "strategy": "model"}]}, "variants"),
        (
            {
                "variants": [
                    {"name": "a", "share": 0.5, "strategy": "model"},
                    {"name": "b", "share": 0.4, "strategy": "model"},
                ]
            },
            "variants",
        ),
        (
            {
                "variants": [
                    {"name": "a", "share": 0.5, "strategy": "magic"},
                    {"name": "b", "share": 0.5, "strategy": "model"},
                ]
            },
            "variants[0].strategy",
        ),
        ({"variants": [{"name": "a", "share": 0.5}, {"name": "b", "share": 0.5, "strategy": "model"}]}, "variants[0]"),
        (
            {
                "variants": [
                    {"name": "a", "share": "half", "strategy": "model"},
                    {"name": "b", "share": 0.5, "strategy": "model"},
                ]
            },
            "variants[0].share",
        ),
        (
            {
                "variants": [
                    {"name": "a", "share": 0.5, "strategy": "model"},
                    {"name": "a", "share": 0.5, "strategy": "model"},
                ]
            },
            "variants",
        ),
        ({"ends_at": "2026-11-01T00:00:00Z"}, "ends_at"),
        ({"ends_at": "tomorrow"}, "ends_at"),
    ],
)
def test_a_bad_definition_names_the_field(overrides, field):
    with pytest.raises(ExperimentError) as error:
        parse_experiment("home", body(**overrides), NOW)
    assert error.value.field == field


def test_a_variant_may_pin_a_model_version():
    variants = [
        {"name": "old", "share": 0.5, "model_version": "v1"},
        {"name": "new", "share": 0.5, "model_version": "v2"},
    ]
    assert parse_experiment("models", body(variants=variants), NOW).variants[1] == Variant("new", 0.5, None, "v2")


def test_assignment_is_stable_and_its_shares_hold_on_ten_thousand_shoppers():
    variants = (Variant("a", 0.2, "bestsellers"), Variant("b", 0.3, "model"), Variant("c", 0.5, "realtime"))
    shoppers = [f"u{i}" for i in range(10_000)]
    first = [assign("home", variants, u).name for u in shoppers]
    assert first == [assign("home", variants, u).name for u in shoppers]
    shares = Counter(first)
    for variant in variants:
        assert abs(shares[variant.name] / len(shoppers) - variant.share) < 0.02


def test_a_new_experiment_reshuffles_shoppers_independently():
    shoppers = [f"u{i}" for i in range(10_000)]
    pairs = Counter((assign("one", HALVES, u).name, assign("two", HALVES, u).name) for u in shoppers)
    for pair in (("a", "a"), ("a", "b"), ("b", "a"), ("b", "b")):
        assert abs(pairs[pair] / len(shoppers) - 0.25) < 0.02


def test_two_proportion_test_matches_a_hand_computed_case():
    # a: 100 clicks of 1,000 shown, b: 130 of 1,000. Pooled rate 0.115, pooled SE sqrt(0.115 * 0.885 * 0.002)
    # = 0.014267, z = 0.03 / 0.014267 = 2.1027, p = 0.0355; unpooled SE 0.014251, interval 0.03 +- 0.027932.
    test = two_proportion_test(100, 1000, 130, 1000)
    assert test.difference == pytest.approx(0.03)
    assert test.p_value == pytest.approx(0.0355, abs=5e-4)
    assert test.interval == pytest.approx((0.03 - 0.027932, 0.03 + 0.027932), abs=1e-5)
    assert two_proportion_test(0, 0, 1, 10) is None


def test_results_compare_each_variant_with_the_first_and_decide():
    counts = [VariantCounts("a", 500, 900, 1000, 100, 10), VariantCounts("b", 510, 880, 1000, 130, 22)]
    rows, decision = experiment_results(counts)
    assert rows[0]["ctr_difference"] is None and rows[1]["ctr"] == pytest.approx(0.13)
    assert rows[1]["conversion"] == pytest.approx(22 / 880)
    assert decision == "winner: b" and significantly_worse(rows) == []
    close = [VariantCounts("a", 50, 90, 100, 10, 1), VariantCounts("b", 51, 88, 100, 12, 2)]
    assert experiment_results(close)[1] == "no difference yet"
    worse = [VariantCounts("a", 500, 900, 1000, 130, 10), VariantCounts("b", 510, 880, 1000, 100, 22)]
    rows, decision = experiment_results(worse)
    assert decision == "winner: a" and significantly_worse(rows) == ["b"]
