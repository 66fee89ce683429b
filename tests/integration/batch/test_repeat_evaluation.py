"""The evaluation that counts repeats applies recsys_core.repeats in Spark tasks: the same split, repeat
rates and buy-again figures as the rules give on the driver, and a blend weight chosen on validation."""

from __future__ import annotations

import random
from collections import defaultdict

import pytest

from recsys_assets.als_training import AlsParams
from recsys_assets.repeat_evaluation import (
    RepeatProtocol,
    evaluate_with_repeats,
    product_repeat_rates,
    purchases_frame,
    split_last_orders,
)
from recsys_core.metrics import evaluate
from recsys_core.repeats import BLEND_WEIGHTS, DAY_SECONDS, Purchase, buy_again, repeat_rates, split_last_order


def weekly_shoppers(rng: random.Random) -> list[Purchase]:
    """30 shoppers with 2 to 6 weekly orders: a few staples of their own bought again, and one-off products.
    Half the orders carry no id (an order is then the shopper's purchases at one timestamp)."""
    rows = []
    for user in range(30):
        staples = rng.sample(range(8), 3)
        for week in range(rng.randint(2, 6)):
            order, ts = (f"o{user}-{week}" if user % 2 else ""), float(week * 7 * DAY_SECONDS + user)
            for item in {*rng.sample(staples, 2), 8 + rng.randrange(20)}:
                rows.append(Purchase(f"u{user}", f"p{item}", order, ts))
    return rows


def test_each_shoppers_last_order_is_held_out_in_tasks_as_the_rule_holds_it_out(spark):
    rows = weekly_shoppers(random.Random(7))
    found = split_last_orders(purchases_frame(spark, rows).repartition(3)).collect()
    by_user: dict[str, list[Purchase]] = defaultdict(list)
    for p in rows:
        by_user[p.user_id].append(p)
    expected = set()
    for purchases in by_user.values():
        train, held_out = split_last_order(purchases)
        expected |= {(p.user_id, p.item_id, p.order, p.ts, False) for p in train}
        expected |= {(p.user_id, p.item_id, p.order, p.ts, True) for p in held_out}
    assert {(r.user_id, r.item_id, r.order_id, r.ts, r.held_out) for r in found} == expected
    assert product_repeat_rates(purchases_frame(spark, rows)) == pytest.approx(repeat_rates(rows))


def test_buy_again_figures_from_tasks_are_the_rules_and_the_blend_weight_comes_from_validation(spark):
    rows = weekly_shoppers(random.Random(8))
    result = evaluate_with_repeats(
        purchases_frame(spark, rows).repartition(3), AlsParams(rank=4, max_iter=3), RepeatProtocol(k=5)
    )
    by_user: dict[str, list[Purchase]] = defaultdict(list)
    for p in rows:
        by_user[p.user_id].append(p)
    splits = {user: split_last_order(purchases) for user, purchases in by_user.items()}
    rates = repeat_rates(p for train, _ in splits.values() for p in train)
    truth = {user: {p.item_id for p in held_out} for user, (_, held_out) in splits.items() if held_out}
    lists = {user: buy_again(splits[user][0], rates, splits[user][1][0].ts, 5) for user in truth}
    expected = evaluate(lists, truth, 5)
    assert {m: result["buy_again"][m] for m in expected} == pytest.approx(expected)
    # Shoppers here mostly rebuy their staples: their own purchases beat the shop's bestsellers.
    assert result["buy_again"]["ndcg"] > result["popularity"]["ndcg"]
    assert result["blend_weight"] in BLEND_WEIGHTS
    assert result["blend_weight"] == max(BLEND_WEIGHTS, key=lambda w: (result["validation"][f"blend {w:g}"], -w))
    assert set(result) >= {"popularity", "als", "buy_again", "blend"}
    assert all(0 <= result["blend"][m] <= 1 for m in ("precision", "recall", "ndcg", "map", "coverage"))
