"""`recsys evaluate` and `recsys materialize` from the command line."""

from __future__ import annotations

import json
import random

import pytest
from typer.testing import CliRunner

from recsys_cli.main import app
from tests.support.isolation import env_of

runner = CliRunner()


def test_materialize_rejects_an_unknown_asset_with_the_known_ones():
    result = runner.invoke(app, ["materialize", "bestseller"])
    assert result.exit_code == 2
    assert "unknown asset or group 'bestseller'" in result.output and "group:model" in result.output


def test_evaluate_rejects_a_file_without_user_and_item_columns(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("user,item\nu1,i1\n")
    result = runner.invoke(app, ["evaluate", "--interactions", str(path)])
    assert result.exit_code == 1 and "needs user_id and item_id" in result.output
    missing = runner.invoke(app, ["evaluate", "--interactions", str(path), "--categories", str(tmp_path / "none.csv")])
    assert missing.exit_code == 2 and "no such file" in missing.output


@pytest.mark.integration
def test_evaluate_prints_als_and_popularity_metrics_and_writes_a_report(spark, tmp_path):
    rng = random.Random(3)
    lines = ["user_id,item_id,rating,timestamp"]
    for group in ("a", "b"):
        for user in range(15 if group == "a" else 30):
            for item in rng.sample(range(10), 6):
                lines.append(f"{group}{user},{group}-item{item},{rng.choice([3, 4, 5])},{rng.randrange(10**9)}")
    data = tmp_path / "interactions.csv"
    data.write_text("\n".join(lines) + "\n")
    categories = tmp_path / "categories.csv"
    categories.write_text(
        "item_id,category_id\n" + "".join(f"{g}-item{i},{g}{i % 2}\n" for g in "ab" for i in range(10))
    )
    report = tmp_path / "report.json"
    result = runner.invoke(
        app,
        ["evaluate", "--interactions", str(data), "--params", "rank=8,max_iter=8,alpha=10", "--out", str(report)]
        + ["--categories", str(categories)],
    )
    assert result.exit_code == 0, result.output
    assert "| ALS |" in result.output and "| popularity |" in result.output and "ndcg@10" in result.output
    assert "coverage" in result.output and "diversity" in result.output
    saved = json.loads(report.read_text())
    assert saved["params"]["rank"] == 8 and saved["als"]["ndcg"] > saved["popularity"]["ndcg"]
    assert 0 < saved["als"]["coverage"] <= 1 and 0 <= saved["als"]["diversity"] <= 1


def test_evaluate_with_repeats_refuses_a_split_or_format_of_its_own(tmp_path):
    path = tmp_path / "orders.csv"
    path.write_text("user_id,item_id,timestamp\nu1,i1,1\n")
    result = runner.invoke(app, ["evaluate", "--interactions", str(path), "--repeats", "--split", "time"])
    assert result.exit_code == 2 and "last order" in result.output


@pytest.mark.integration
def test_evaluate_with_repeats_reports_buy_again_and_the_blend_beside_als_and_popularity(spark, tmp_path):
    rng = random.Random(4)
    lines = ["user_id,item_id,order_id,timestamp"]
    for user in range(20):
        staples = rng.sample(range(6), 2)
        for week in range(4):
            for item in {*staples, 6 + rng.randrange(12)}:
                lines.append(f"u{user},p{item},o{user}-{week},{week * 604800}")
    data = tmp_path / "orders.csv"
    data.write_text("\n".join(lines) + "\n")
    report = tmp_path / "report.json"
    result = runner.invoke(
        app,
        ["evaluate", "--interactions", str(data), "--repeats", "--params", "rank=4,max_iter=3", "--out", str(report)],
    )
    assert result.exit_code == 0, result.output
    assert "| buy_again |" in result.output and "| blend (weight" in result.output and "| ALS |" in result.output
    saved = json.loads(report.read_text())
    assert saved["split"] == "last order" and saved["blend_weight"] in (0, 0.25, 0.5, 0.75, 1)
    assert saved["buy_again"]["ndcg"] > saved["popularity"]["ndcg"]


@pytest.mark.integration
def test_materialize_for_a_past_day_ranks_bestsellers_of_that_days_window(settings, spark, mongo_db):
    from datetime import datetime

    orders = [
        ("o1", "u1", "p1", 1, 1.0, datetime.fromisoformat("2026-11-20T10:00:00+00:00")),
        ("o2", "u2", "p2", 1, 1.0, datetime.fromisoformat("2026-11-21T10:00:00+00:00")),
    ]  # the next day
    (
        spark.createDataFrame(
            orders, "order_id string, user_id string, product_id string, quantity int, price double, ts timestamp"
        )
        .write.format("delta")
        .save(str(settings.lake_dir / "orders"))
    )
    spark.createDataFrame([("p1", "c1")], "product_id string, category_id string").write.format("delta").save(
        str(settings.lake_dir / "products")
    )
    env = env_of(settings)
    result = runner.invoke(
        app, ["materialize", "group:bestsellers", "bestseller_documents", "--partition", "2026-11-20"], env=env
    )
    assert result.exit_code == 0, result.output
    assert "ok   bestsellers (1 rows); category_bestsellers (1 rows)" in result.output
    global_list = mongo_db.bestsellers.find_one({"_id": "global"})
    assert [p["product_id"] for p in global_list["products"]] == ["p1"]


@pytest.mark.integration
def test_model_commands_list_refuse_and_roll_back(settings, mongo_db):
    from datetime import UTC, datetime

    for i, (version, passed) in enumerate([("v1", True), ("v2", True), ("v3", False)]):
        mongo_db.models.insert_one(
            {
                "_id": version,
                "version": version,
                "checks_passed": passed,
                "promoted": False,
                "created_at": datetime(2026, 11, 1 + i, tzinfo=UTC),
                "metrics": {"als": {"ndcg": 0.3}, "popularity": {"ndcg": 0.2}},
            }
        )
    env = env_of(settings)
    assert runner.invoke(app, ["model", "promote", "v2"], env=env).exit_code == 0
    refused = runner.invoke(app, ["model", "promote", "v3"], env=env)
    assert refused.exit_code == 1 and "did not pass its evaluation checks" in refused.output
    listed = runner.invoke(app, ["model", "list"], env=env)
    assert "| v2 | als | 0.3000 | 0.2000 | True | yes |" in listed.output
    rolled = runner.invoke(app, ["model", "rollback"], env=env)
    assert rolled.exit_code == 0 and "model v1 is current" in rolled.output


@pytest.mark.integration
def test_materialize_backfills_a_range_in_one_run_printing_one_line_per_step(settings, spark, unique):
    from datetime import UTC, datetime, timedelta

    from tests.support.batch import event, land, produce

    first = datetime(2026, 4, 1, tzinfo=UTC)
    produce(
        settings,
        [event("product_view", f"{unique}-u", f"{unique}-p", first + timedelta(days=i, hours=2)) for i in range(2)],
    )
    land(settings, spark)
    env = env_of(settings)
    result = runner.invoke(app, ["materialize", "raw_events", "--from", "2026-04-01", "--to", "2026-04-02"], env=env)
    assert result.exit_code == 0, result.output
    assert result.output.count("==>") == 1 and "events of 2026-04-01..2026-04-02 (2 days)" in result.output
    assert "ok   raw_events (" in result.output and "quarantined_events (" in result.output
    assert "check no_quarantined_events on raw_events: passed" in result.output
    assert " DEBUG " not in result.output and "STEP_START" not in result.output
    rows = spark.read.format("delta").load(str(settings.lake_dir / "raw_events")).where(f"user_id = '{unique}-u'")
    assert sorted(str(r.day) for r in rows.collect()) == ["2026-04-01", "2026-04-02"]
