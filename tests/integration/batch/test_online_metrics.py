"""Online metrics and experiment results on the real stack: lists served through the API, clicks and
purchases posted to it, the day materialised from Kafka into Delta and the serving store, exact counts
read back from the lake, GET /v1/metrics/online and GET /v1/experiments/{name}; then the winner promoted
and the shoppers' recommendations rebuilt from it.

Twelve shoppers, four per variant of a three-way experiment on the recommendations surface, are each
served three lists of five products: 60 products shown per variant. Variant `b` (a pinned model
version) is clicked 40 times, the first variant `a` (bestsellers) 12 times, `c` once: `b` wins and `c`
is significantly worse. Until then every shopper's recommendations document is the current model's
(v1), except b's, which the pinned v2 scored; v2 is a small EASE model of the twenty products.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from dagster import AssetCheckSeverity, DagsterInstance, materialize
from typer.testing import CliRunner

from recsys_assets.definitions import build_assets
from recsys_assets.ease_training import TrainedEase
from recsys_assets.experiment_results import promote_experiment_winner_job
from recsys_assets.resources import build_resources
from recsys_cli.main import app
from recsys_core.events import format_ts
from recsys_core.experiments import assign, parse_experiment
from recsys_io.mongo import BESTSELLERS, RECOMMENDATIONS, mongo_client, serving_db
from recsys_io.registry import current_model, register_model
from tests.support.api import NOW, api_client, bestsellers
from tests.support.batch import land
from tests.support.isolation import env_of, isolated, release

pytestmark = pytest.mark.integration

KEY = {"X-API-Key": "k1"}
EXPERIMENT = {
    "surface": "recommendations",
    "variants": [
        {"name": "a", "share": 0.34, "strategy": "bestsellers"},
        {"name": "b", "share": 0.33, "model_version": "v2"},
        {"name": "c", "share": 0.33, "strategy": "model"},
    ],
}
CLICKS = {"a": 12, "b": 40, "c": 1}  # of 60 products shown per variant
SELECTION = [
    "raw_events",
    "quarantined_events",
    "products",
    "impressions",
    "clicks",
    "attributed_orders",
    "online_metrics",
    "experiment_results",
]


def shoppers(prefix: str) -> dict[str, list[str]]:
    """Four shoppers of each variant, as the experiment assigns them."""
    experiment = parse_experiment("home", EXPERIMENT, NOW)
    by_variant: dict[str, list[str]] = {"a": [], "b": [], "c": []}
    n = 0
    while min(len(users) for users in by_variant.values()) < 4:
        user = f"{prefix}-u{n}"
        users = by_variant[assign("home", experiment.variants, user).name]
        if len(users) < 4:
            users.append(user)
        n += 1
    return by_variant


def model(version: str, promoted: bool, family: str = "als", path: str | None = None) -> dict:
    return {
        "_id": version,
        "version": version,
        "family": family,
        "params": {},
        "metrics": {},
        "checks_passed": True,
        "promoted": promoted,
        "promoted_at": NOW if promoted else None,
        "created_at": NOW,
        "path": path or f"/nowhere/{version}",
    }


def small_ease(path: Path) -> str:
    """An EASE model of the twenty catalog products, every pair alike: whatever a shopper bought, the rest."""
    products = [f"{p}{i}" for p in "gp" for i in range(10)]
    weights = np.full((len(products), len(products)), 0.5, dtype=np.float32)
    np.fill_diagonal(weights, 0.0)
    TrainedEase(products, weights, binary=True, seconds=0.0).save(path)
    return str(path)


def seed_store(db, settings, by_variant: dict[str, list[str]]) -> None:
    db[BESTSELLERS].insert_one(bestsellers("global", [(f"g{i}", 100 - i) for i in range(10)]))
    db[RECOMMENDATIONS].insert_many(
        [
            {
                "_id": u,
                "user_id": u,
                "items": [{"product_id": f"p{i}", "score": 1 - i / 20, "reason": {"kind": "model"}} for i in range(10)],
                "strategy": "als",
                "model_version": "v2" if variant == "b" else "v1",
                "computed_at": NOW,
            }
            for variant, users in by_variant.items()
            for u in users
        ]
    )
    register_model(db, model("v1", promoted=True))
    register_model(db, model("v2", promoted=False, family="ease", path=small_ease(settings.models_dir / "v2")))


def purchase(user: str, product: str, quantity: int, price: float) -> dict:
    return {
        "type": "purchase",
        "user_id": user,
        "order_id": f"o-{user}-{product}",
        "ts": format_ts(datetime.now(UTC) + timedelta(seconds=1)),
        "items": [{"product_id": product, "quantity": quantity, "price": price}],
    }


@pytest.fixture(scope="module")
def served(stack, spark):
    settings = isolated(stack, "online_metrics")
    by_variant = shoppers(f"m{random.randrange(10**6)}")
    client = mongo_client(settings)
    db = serving_db(client, settings)
    seed_store(db, settings, by_variant)
    lists: dict[str, list[dict]] = {"a": [], "b": [], "c": []}
    with api_client(settings, api_keys=("k1",)) as api:
        catalog = [{"product_id": f"{p}{i}", "category_id": "c1"} for p in "gp" for i in range(10)]
        assert api.put("/v1/products", json=catalog, headers=KEY).status_code == 200
        assert api.put("/v1/experiments/home", json=EXPERIMENT, headers=KEY).status_code == 200
        for variant, users in by_variant.items():
            for user in users:
                for _ in range(3):
                    body = api.get(f"/v1/users/{user}/recommendations", params={"limit": 5}).json()
                    assert body["variant"] == variant and len(body["products"]) == 5, body
                    lists[variant].append({**body, "user_id": user})
        clicks, ts = [], format_ts(datetime.now(UTC))  # before the purchases below
        for variant, wanted in CLICKS.items():
            shown = [(body, product) for body in lists[variant] for product in body["products"]]
            clicks += [
                {"type": "click", "user_id": body["user_id"], "product_id": product, "rec_id": body["rec_id"], "ts": ts}
                for body, product in shown[:wanted]
            ]
        # Owed to a clicked list: b's first shopper bought the first product b showed them, a's first
        # shopper the first of theirs. c's first shopper bought a product nobody clicked: owed to no list.
        b_buyer, a_buyer, c_buyer = lists["b"][0], lists["a"][0], lists["c"][0]
        purchases = [
            purchase(b_buyer["user_id"], b_buyer["products"][0], 2, 9.5),
            purchase(a_buyer["user_id"], a_buyer["products"][0], 1, 4.0),
            purchase(c_buyer["user_id"], "g9", 1, 3.0),
        ]
        accepted = api.post("/v1/events", json={"events": clicks + purchases}, headers=KEY)
        assert accepted.status_code == 202, accepted.text
    # The API flushed its impressions to Kafka when it closed; the sink lands them with the rest.
    land(settings, spark)
    day = datetime.now(UTC).date().isoformat()
    instance = DagsterInstance.ephemeral()
    result = materialize(
        build_assets(settings),
        selection=SELECTION,
        partition_key=day,
        instance=instance,
        resources=build_resources(settings),
    )
    yield {"settings": settings, "db": db, "lists": lists, "day": day, "result": result, "instance": instance}
    client.close()
    release(settings)


def test_the_day_materialises_every_metrics_asset(served):
    assert served["result"].success
    materialized = {e.asset_key.to_user_string() for e in served["result"].get_asset_materialization_events()}
    assert set(SELECTION) <= materialized


def expected_rows(served) -> list[dict]:
    """Three lists of five per shopper, four shoppers per variant, the clicks above, one attributed order
    each for a (1 x 4.0) and b (2 x 9.5); every variant showed five of the twenty catalog products."""
    lists, day = served["lists"], served["day"]
    orders = {"a": (1, 4.0), "b": (1, 19.0), "c": (0, 0.0)}
    return [
        {
            "day": day,
            "surface": "recommendations",
            "strategy": lists[v][0].get("strategy"),
            "model_version": lists[v][0].get("model_version"),
            "experiment": "home",
            "variant": v,
            "lists": 12,
            "products_shown": 60,
            "clicks": CLICKS[v],
            "ctr": CLICKS[v] / 60,
            "orders": orders[v][0],
            "conversion": orders[v][0] / 12,
            "revenue": orders[v][1],
            "coverage": 5 / 20,
        }
        for v in ("a", "b", "c")
    ]


def test_online_metrics_count_exactly_the_served_lists_clicks_and_attributed_orders(served, spark):
    path = str(served["settings"].lake_dir / "online_metrics")
    rows = spark.read.format("delta").load(path).orderBy("variant").collect()
    assert [{**r.asDict(), "day": r.day.isoformat()} for r in rows] == expected_rows(served)
    orders = spark.read.format("delta").load(str(served["settings"].lake_dir / "attributed_orders"))
    assert orders.count() == 2  # the purchase of an unclicked product is owed to no list


def test_get_online_metrics_answers_the_published_rows_and_filters_by_surface(served):
    day = served["day"]
    with api_client(served["settings"]) as api:
        answer = api.get("/v1/metrics/online", params={"from": day, "to": day})
        assert answer.status_code == 200, answer.text
        # Rows come ordered by day, then surface, strategy, model_version, experiment and variant.
        assert answer.json() == {
            "rows": sorted(expected_rows(served), key=lambda r: (r["strategy"], r["model_version"] or "", r["variant"]))
        }
        other = api.get("/v1/metrics/online", params={"from": day, "to": day, "surface": "bestsellers"})
        assert other.json() == {"rows": []}
        bad = api.get("/v1/metrics/online", params={"from": day, "to": "soon"})
        assert bad.status_code == 400 and bad.json()["error"]["details"][0]["field"] == "to"
        missing = api.get("/v1/metrics/online", params={"to": day})
        assert missing.status_code == 400 and missing.json()["error"]["details"][0]["field"] == "from"


def test_get_online_metrics_answers_503_while_the_store_is_down(served):
    with api_client(served["settings"], mongo_uri="mongodb://127.0.0.1:9/") as api:
        answer = api.get("/v1/metrics/online", params={"from": served["day"], "to": served["day"]})
    assert answer.status_code == 503 and answer.json()["error"]["code"] == "store_unavailable"


def test_experiment_results_fill_the_experiment_with_counts_and_a_winner(served):
    with api_client(served["settings"]) as api:
        body = api.get("/v1/experiments/home").json()
    assert body["decision"] == "winner: b"
    counts = {r["variant"]: (r["shoppers"], r["lists"], r["clicks"], r["orders"]) for r in body["results"]}
    assert counts == {"a": (4, 12, 12, 1), "b": (4, 12, 40, 1), "c": (4, 12, 1, 0)}
    first, b, c = body["results"]
    assert first["ctr_difference"] is None and first["p_value"] is None
    assert b["ctr_difference"] == pytest.approx(40 / 60 - 12 / 60) and b["p_value"] < 0.05
    assert b["ctr_interval"][0] > 0 and c["ctr_interval"][1] < 0
    assert b["conversion"] == pytest.approx(1 / 12)


def test_the_check_warns_that_a_variant_is_significantly_worse(served):
    [check] = [
        c for c in served["result"].get_asset_check_evaluations() if c.check_name == "no_variant_significantly_worse"
    ]
    assert not check.passed and check.severity == AssetCheckSeverity.WARN
    assert check.metadata["worse"].value == {"home": ["c"]}


def test_promoting_the_winner_makes_its_model_current_and_served_and_refuses_without_a_model_winner(served):
    settings, db = served["settings"], served["db"]
    runner = CliRunner()
    env = env_of(settings)
    db.experiments.insert_one(
        {**parse_experiment("tie", EXPERIMENT, NOW).as_document(), "decision": "no difference yet"}
    )
    refused = runner.invoke(app, ["experiment", "promote", "tie"], env=env)
    assert refused.exit_code == 1 and "has no winner" in refused.output
    assert current_model(db)["_id"] == "v1"

    # c's first shopper, served the model's list, bought g9: the rebuilt list is v2's of the other products.
    shopper = served["lists"]["c"][0]["user_id"]
    with api_client(settings) as api:
        before = api.get(f"/v1/users/{shopper}/recommendations").json()
    assert (before["variant"], before["model_version"]) == ("c", "v1")

    promoted = runner.invoke(app, ["experiment", "promote", "home"], env=env)
    assert promoted.exit_code == 0, promoted.output
    assert "model v2 is current" in promoted.output and current_model(db)["_id"] == "v2"
    rebuilt = materialize(
        build_assets(settings),
        selection=["interactions", "orders", "user_recommendations"],
        instance=served["instance"],
        resources=build_resources(settings),
    )
    assert rebuilt.success
    with api_client(settings) as api:
        after = api.get(f"/v1/users/{shopper}/recommendations").json()
    assert (after["variant"], after["model_version"], after["strategy"]) == ("c", "v2", "ease")
    assert after["products"] and "g9" not in after["products"]

    db.models.update_one({"_id": "v1"}, {"$set": {"promoted_at": datetime.now(UTC), "promoted": True}})
    job = promote_experiment_winner_job.execute_in_process(
        run_config={"ops": {"promote_winner": {"config": {"experiment": "home"}}}},
        resources=build_resources(settings),
    )
    assert job.success and current_model(db)["_id"] == "v2"
