"""Experiments through the API: define, list, show and stop; each shopper served their variant's list."""

from __future__ import annotations

from collections import Counter

import pytest

from recsys_io.mongo import BESTSELLERS, RECOMMENDATIONS
from tests.support.api import NOW, api_client, bestsellers

KEY = {"X-API-Key": "k1"}
HALVES = {
    "surface": "recommendations",
    "variants": [
        {"name": "popular", "share": 0.5, "strategy": "bestsellers"},
        {"name": "model", "share": 0.5, "strategy": "model"},
    ],
}
SHOPPERS = [f"u{i}" for i in range(40)]


@pytest.fixture
def shop(mongo_db):
    """Global bestsellers, and a model's recommendations for every shopper."""
    mongo_db[BESTSELLERS].insert_one(bestsellers("global", [(f"g{i}", 100 - i) for i in range(12)]))
    mongo_db[RECOMMENDATIONS].insert_many(
        [
            {
                "_id": u,
                "user_id": u,
                "items": [
                    {"product_id": f"r{i}", "score": 1.0 - i / 20, "reason": {"kind": "model"}} for i in range(12)
                ],
                "strategy": "als",
                "model_version": "v1",
                "computed_at": NOW,
            }
            for u in SHOPPERS
        ]
    )
    return mongo_db


def test_each_shopper_gets_their_variants_list_every_time_until_it_stops(settings, shop):
    with api_client(settings, api_keys=("k1",)) as client:
        defined = client.put("/v1/experiments/home", json=HALVES, headers=KEY)
        assert defined.status_code == 200, defined.text
        assert defined.json()["status"] == "running" and defined.json()["decision"] == "no data yet"

        served = {u: client.get(f"/v1/users/{u}/recommendations").json() for u in SHOPPERS}
        again = {u: client.get(f"/v1/users/{u}/recommendations").json()["variant"] for u in SHOPPERS}
        assert again == {u: body["variant"] for u, body in served.items()}  # the same variant each time
        assert set(Counter(again.values())) == {"popular", "model"}
        for body in served.values():
            assert body["experiment"] == "home"
            if body["variant"] == "popular":
                assert body["strategy"] == "bestsellers" and body["products"][0] == "g0"
            else:
                assert body["strategy"] == "als" and body["products"][0] == "r0"

        listed = client.get("/v1/experiments").json()["experiments"]
        assert [e["name"] for e in listed] == ["home"]
        shown = client.get("/v1/experiments/home").json()
        assert shown["variants"] == HALVES["variants"] and shown["results"] == []

        stopped = client.delete("/v1/experiments/home", headers=KEY)
        assert stopped.status_code == 200 and stopped.json()["status"] == "ended"
        after = client.get("/v1/users/u1/recommendations").json()
        assert "experiment" not in after and after["strategy"] == "als"


def test_bad_definitions_answer_422_with_the_field_and_writes_need_the_key(settings, shop):
    with api_client(settings, api_keys=("k1",)) as client:
        assert client.put("/v1/experiments/home", json=HALVES).status_code == 401
        uneven = {**HALVES, "variants": [{**v, "share": 0.4} for v in HALVES["variants"]]}
        answer = client.put("/v1/experiments/home", json=uneven, headers=KEY)
        assert answer.status_code == 422
        assert answer.json()["error"]["details"] == [
            {"field": "variants", "reason": "shares must sum to 1 (they sum to 0.8)"}
        ]
        answer = client.put("/v1/experiments/home", json={**HALVES, "surface": "history"}, headers=KEY)
        assert answer.status_code == 422 and answer.json()["error"]["details"][0]["field"] == "surface"
        assert client.get("/v1/experiments/nothing").status_code == 404
        assert client.delete("/v1/experiments/nothing", headers=KEY).status_code == 404


def test_the_cli_defines_shows_and_stops_an_experiment_the_api_serves(settings, shop, tmp_path, monkeypatch):
    import json

    from typer.testing import CliRunner

    from recsys_cli.main import app

    for name, value in {"RECSYS_MONGO_DB": settings.mongo_db, "RECSYS_TOPIC_PREFIX": settings.topic_prefix}.items():
        monkeypatch.setenv(name, value)
    definition = tmp_path / "home.json"
    definition.write_text(json.dumps(HALVES))
    runner = CliRunner()
    put = runner.invoke(app, ["experiment", "put", "home", "--file", str(definition)])
    assert put.exit_code == 0, put.output
    assert "home: recommendations, running" in put.output and "| popular | 0.5 | bestsellers |" in put.output
    with api_client(settings) as client:
        assert client.get("/v1/users/u1/recommendations").json()["experiment"] == "home"
    listed = runner.invoke(app, ["experiment", "list"])
    assert "| home | recommendations | running |" in listed.output
    stopped = runner.invoke(app, ["experiment", "stop", "home"])
    assert stopped.exit_code == 0 and "ended" in stopped.output
    assert runner.invoke(app, ["experiment", "show", "nothing"]).exit_code == 1
    bad = runner.invoke(app, ["experiment", "put", "home", "--file", str(tmp_path / "missing.json")])
    assert bad.exit_code == 2 and "cannot read the definition" in bad.output
