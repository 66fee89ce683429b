"""`recsys materialize` splits a selection into runs in dependency order, from the real graph."""

from __future__ import annotations

from dagster import AssetsDefinition

from recsys_assets.definitions import build_assets
from recsys_cli.batch import _phases
from recsys_core.settings import Settings


def graph() -> tuple[list[str], list[tuple[str, ...]], dict[str, list[str]]]:
    assets = [a for a in build_assets(Settings.from_env({})) if isinstance(a, AssetsDefinition)]
    keys = [k.to_user_string() for a in assets for k in a.keys]
    partitioned = [tuple(k.to_user_string() for k in a.keys) for a in assets if a.partitions_def is not None]
    deps = {k.to_user_string(): [d.to_user_string() for d in a.asset_deps[k]] for a in assets for k in a.keys}
    return keys, partitioned, deps


def test_the_whole_graph_runs_what_daily_assets_read_then_the_daily_assets_then_the_rest():
    keys, partitioned, deps = graph()
    before, daily, rest = _phases(keys, partitioned, deps)
    assert set(before) == {"erasures", "products"}
    assert set(daily) == {
        "raw_events",
        "quarantined_events",
        "impressions",
        "clicks",
        "attributed_orders",
        "online_metrics",
    }
    assert {"orders", "als_model", "experiment_results"} <= set(rest)
    assert sorted(before + daily + rest) == sorted(keys)
    done = set()
    for phase in (before, daily, rest):  # no run reads an asset a later run writes
        assert all(dep in done or dep not in keys or dep in phase for key in phase for dep in deps[key])
        done |= set(phase)


def test_one_key_of_a_step_that_writes_several_runs_the_whole_step():
    _, partitioned, deps = graph()
    before, daily, rest = _phases(["quarantined_events"], partitioned, deps)
    assert (before, sorted(daily), rest) == ([], ["quarantined_events", "raw_events"], [])
