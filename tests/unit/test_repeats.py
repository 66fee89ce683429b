"""The repeat-purchase rules: repeat rates, a shopper's last order, buy_again and its blend with the model."""

from __future__ import annotations

import pytest

from recsys_core.repeats import (
    BUY_AGAIN,
    DAY_SECONDS,
    MODEL,
    BadBlendWeight,
    Purchase,
    best_weight,
    blend,
    buy_again,
    buy_again_scored,
    can_buy_again,
    repeat_rate,
    repeat_rates,
    served_weight,
    shop_repeat_rate,
    split_last_order,
)

DAY = DAY_SECONDS


def test_repeat_rate_is_the_share_of_buyers_who_bought_it_in_two_orders():
    rows = [
        Purchase("a", "milk", "o1", 0),
        Purchase("a", "milk", "o2", DAY),
        Purchase("b", "milk", "o3", 0),
        Purchase("c", "milk", "o4", 0),
        Purchase("c", "milk", "o4", 0),  # twice in one order is one order
    ]
    assert repeat_rate(rows) == pytest.approx(1 / 3)
    assert repeat_rate([]) == 0.0


def test_without_order_ids_an_order_is_one_shoppers_purchases_at_one_timestamp():
    rows = [Purchase("a", "tea", ts=0), Purchase("a", "tea", ts=0), Purchase("a", "tea", ts=DAY)]
    assert repeat_rates(rows) == {"tea": 1.0}
    assert repeat_rates(rows[:2]) == {"tea": 0.0}


def test_last_order_is_held_out_and_a_single_order_stays_in_training():
    first = [Purchase("a", "milk", "o1", 0), Purchase("a", "bread", "o1", 0)]
    last = [Purchase("a", "milk", "o2", 2 * DAY), Purchase("a", "eggs", "o2", 2 * DAY)]
    train, held_out = split_last_order([last[0], *first, last[1]])
    assert sorted(train, key=str) == sorted(first, key=str)
    assert sorted(held_out, key=str) == sorted(last, key=str)
    assert split_last_order(first) == (first, [])


def test_buy_again_ranks_by_how_often_and_how_recently_and_skips_products_not_bought_again():
    rates = {"milk": 0.6, "bread": 0.5, "tv": 0.01}
    now = 60 * DAY
    history = [
        Purchase("a", "milk", "o1", 0),
        Purchase("a", "milk", "o2", 30 * DAY),
        Purchase("a", "milk", "o4", 50 * DAY),
        Purchase("a", "bread", "o3", 59 * DAY),
        Purchase("a", "tv", "o3", 59 * DAY),
    ]
    scored = buy_again_scored(history, rates, now, half_life_days=30)
    assert [item for item, _ in scored] == ["milk", "bread"]
    assert scored[0][1] == pytest.approx(0.25 + 0.5 + 0.5 ** (10 / 30))
    assert scored[1][1] == pytest.approx(0.5 ** (1 / 30))
    # Bought as often, the more recent one comes first.
    once_each = [Purchase("a", "milk", "o1", 0), Purchase("a", "bread", "o2", DAY)]
    assert buy_again(once_each, rates, now) == ["bread", "milk"]
    assert buy_again(history, rates, now, min_rate=0.55) == ["milk"]
    assert buy_again(history, rates, now, k=1) == ["milk"]


def test_blend_interleaves_by_weight_without_repeating_a_product():
    again, model = ["a1", "a2", "a3"], ["m1", "a2", "m2", "m3"]
    assert blend(again, model, 0.0, 4) == [("m1", MODEL), ("a2", MODEL), ("m2", MODEL), ("m3", MODEL)]
    assert [p for p, _ in blend(again, model, 1.0, 5)] == ["a1", "a2", "a3", "m1", "m2"]
    assert blend(again, model, 0.5, 4) == [("a1", BUY_AGAIN), ("m1", MODEL), ("a2", BUY_AGAIN), ("m2", MODEL)]
    assert [s for _, s in blend(["a1", "a2", "a3", "a4"], ["m1", "m2", "m3"], 0.25, 4)] == [
        BUY_AGAIN,
        MODEL,
        MODEL,
        MODEL,
    ]


def test_blend_fills_from_either_list_when_the_other_runs_out():
    assert [p for p, _ in blend(["a1"], ["m1", "m2"], 1.0, 5)] == ["a1", "m1", "m2"]
    assert [p for p, _ in blend(["a1", "a2"], [], 0.0, 5)] == ["a1", "a2"]


@pytest.mark.parametrize("weight", [-0.1, 1.5])
def test_a_blend_weight_outside_zero_to_one_is_refused(weight):
    with pytest.raises(BadBlendWeight, match="from 0 to 1"):
        blend([], [], weight)


def test_best_weight_takes_the_best_ndcg_and_the_smallest_weight_among_equals():
    assert best_weight({0.0: 0.1, 0.5: 0.3, 1.0: 0.3}) == 0.5
    with pytest.raises(BadBlendWeight):
        best_weight({})


def test_the_setting_overrides_the_recorded_weight_and_without_either_the_model_is_served_alone():
    assert served_weight(0.25, 0.75) == 0.25
    assert served_weight(0.0, 0.75) == 0.0  # set to 0 explicitly: no blend, whatever the evaluation chose
    assert served_weight(None, 0.75) == 0.75
    assert served_weight(None, None) == 0.0


def test_a_shop_whose_products_nobody_buys_twice_has_nothing_to_blend_in():
    rates = repeat_rates(
        [Purchase("a", "tv", "o1", 0), Purchase("a", "radio", "o2", DAY), Purchase("b", "tv", "o3", 0)]
    )
    assert shop_repeat_rate(rates) == 0.0 and not can_buy_again(rates)
    rates = {"milk": 0.5, "tv": 0.0, "bread": 0.1}
    assert shop_repeat_rate(rates) == pytest.approx(2 / 3)
    assert can_buy_again(rates) and not can_buy_again(rates, min_rate=0.6)
    assert shop_repeat_rate({}) == 0.0


def test_purchase_files_keep_every_line_and_name_a_missing_column_or_bad_time():
    from recsys_core.datasets import BadInteractionFile, parse_purchases

    rows = parse_purchases("user_id,item_id,order_id,timestamp\nu,milk,o1,10\nu,milk,o2,20\nv,tea,,5\n")
    assert rows == [Purchase("u", "milk", "o1", 10.0), Purchase("u", "milk", "o2", 20.0), Purchase("v", "tea", "", 5.0)]
    with pytest.raises(BadInteractionFile, match="needs user_id, item_id and timestamp"):
        parse_purchases("user_id,item_id\nu,i\n")
    with pytest.raises(BadInteractionFile, match="line 2: 'noon' is not a number"):
        parse_purchases("user_id,item_id,timestamp\nu,i,noon\n")
    with pytest.raises(BadInteractionFile, match="line 2: user_id, item_id and timestamp must not be empty"):
        parse_purchases("user_id,item_id,timestamp\nu,i,\n")
