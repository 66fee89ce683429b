"""Erasing a shopper end to end: the API and the CLI erase, one refresh, and no table, document or
model file holds the shopper's id; the other shoppers are intact."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from pathlib import Path

import bson
import pytest
from dagster import DagsterInstance, materialize
from typer.testing import CliRunner

from recsys_assets.definitions import build_assets
from recsys_assets.resources import build_resources
from recsys_cli.main import app
from recsys_core.erasure import PENDING, user_hash
from recsys_io.mongo import BUY_AGAIN, ERASURES, HISTORY, RECOMMENDATIONS
from tests.support.api import api_client
from tests.support.batch import event, land, model_config, produce
from tests.support.isolation import env_of

pytestmark = pytest.mark.integration

DAY = (datetime.now(UTC) - timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
REFRESH = [
    "erasures",
    "raw_events",
    "quarantined_events",
    "orders",
    "interactions",
    "als_model",
    "impressions",
    "clicks",
    "attributed_orders",
]


def shop_events(shoppers: list[str]) -> list[dict]:
    products = [f"p{i}" for i in range(6)]
    events = []
    for n, shopper in enumerate(shoppers):
        for k in range(4):
            events.append(event("product_view", shopper, products[(n + k) % 6], DAY + timedelta(hours=n, minutes=k)))
        events.append(event("purchase", shopper, products[n % 6], DAY + timedelta(hours=n, minutes=30)))
        events.append(event("click", shopper, products[n % 6], DAY + timedelta(hours=n, minutes=20), rec_id="r1"))
    events.append({"type": "rating", "user_id": shoppers[-1], "product_id": "p1", "score": 9, "ts": DAY.isoformat()})
    return events


def refresh(settings, spark, selection=REFRESH):
    """`recsys sink --once`, then the assets an erasure reaches, in one run; the run's result."""
    land(settings, spark)
    result = materialize(
        build_assets(settings),
        selection=selection,
        # `erasures` alone has no partitions; the other assets are daily.
        partition_key=None if selection == ["erasures"] else DAY.date().isoformat(),
        instance=DagsterInstance.ephemeral(),
        resources=build_resources(settings),
        # ALS: the version with per-shopper files
        run_config=model_config(families=["als"]) if "als_model" in selection else None,
    )
    assert result.success
    return result


def erasures_metadata(result) -> dict:
    [materialization] = result.asset_materializations_for_node("erasures")
    return {name: value.value for name, value in materialization.metadata.items()}


def files_holding(root: Path, text: str) -> list[str]:
    needle = text.encode()
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and needle in p.read_bytes())


def documents_holding(db, text: str) -> list[str]:
    needle = text.encode()
    return [
        f"{name}/{doc['_id']}"
        for name in db.list_collection_names()
        for doc in db[name].find()
        if needle in bson.encode(doc)
    ]


def test_an_erased_shopper_is_in_no_table_document_or_model_file_after_one_refresh(settings, spark, mongo_db, unique):
    settings = dataclasses.replace(settings, erasure_vacuum_retain_hours=0)
    kept = [f"{unique}-keep{i}" for i in range(4)]
    by_api, by_cli = f"{unique}-gone-api", f"{unique}-gone-cli"
    # One of the erased shopper's views in the clickstream format: it names the shopper `userid`.
    clickstream = {
        "event": "ProductView",
        "messageid": f"{unique}-m1",
        "userid": by_api,
        "timestamp": (DAY + timedelta(hours=3)).isoformat(),
        "properties": {"productid": "p2"},
    }
    produce(settings, [*shop_events([*kept, by_api, by_cli]), clickstream])
    refresh(settings, spark)
    assert files_holding(settings.lake_dir, by_api) and files_holding(settings.lake_dir, by_cli)
    assert files_holding(settings.models_dir, by_api)  # the first version's user_index and user_factors
    for shopper in (*kept, by_api, by_cli):
        for name in (HISTORY, RECOMMENDATIONS, BUY_AGAIN):
            mongo_db[name].insert_one({"_id": shopper, "user_id": shopper, "items": []})

    with api_client(settings) as client:
        answer = client.delete(f"/v1/users/{by_api}")
    assert answer.status_code == 202, answer.text
    erased = [HISTORY, RECOMMENDATIONS, BUY_AGAIN]
    assert answer.json() == {"user_id": by_api, "erased": erased, "pending": list(PENDING)}
    printed = CliRunner().invoke(app, ["erase", by_cli], env=env_of(settings))
    assert printed.exit_code == 0, printed.output
    assert f'"user_id": "{by_cli}"' in printed.output
    assert documents_holding(mongo_db, by_api) == [] and documents_holding(mongo_db, by_cli) == []
    assert {d["_id"] for d in mongo_db[ERASURES].find()} == {user_hash(by_api), user_hash(by_cli)}
    # An event of the erased shopper from before the erasure, arriving after it, does not bring them back.
    produce(settings, [event("product_view", by_api, "p1", DAY + timedelta(hours=2))])

    # No retrain: the erasure itself must clear the model files the first refresh wrote.
    result = refresh(settings, spark, [name for name in REFRESH if name != "als_model"])
    assert erasures_metadata(result)["tables_vacuumed"] > 0  # a retention of 0: the same run vacuums

    for shopper in (by_api, by_cli):
        assert files_holding(settings.lake_dir, shopper) == []
        assert files_holding(settings.models_dir, shopper) == []
        assert documents_holding(mongo_db, shopper) == []
    recorded = spark.read.format("delta").load(str(settings.lake_dir / "erasures")).collect()
    assert {r.user_hash for r in recorded} == {user_hash(by_api), user_hash(by_cli)}
    raw = spark.read.format("delta").load(str(settings.lake_dir / "raw_events"))
    assert {r.user_id for r in raw.select("user_id").distinct().collect()} == set(kept)
    assert raw.count() == 6 * len(kept)
    interactions = spark.read.format("delta").load(str(settings.lake_dir / "interactions"))
    assert {r.user_id for r in interactions.select("user_id").distinct().collect()} == set(kept)
    assert all(mongo_db[HISTORY].find_one({"_id": shopper}) for shopper in kept)
    # The next run has nothing to apply and nothing past its retention: it vacuums nothing.
    again = erasures_metadata(refresh(settings, spark, ["erasures"]))
    assert again["new_erasures"] == 0 and again["tables_vacuumed"] == 0
