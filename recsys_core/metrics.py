"""How a recommender is judged: the split protocol, ranking metrics at k and the popularity baseline.

The protocol follows Microsoft Recommenders' benchmarks: each user's interactions are split at
random 75/25 with a fixed seed (or, as an option, by time: the oldest 75% train), every model
ranks the items the user has not seen in training, and the metrics are averaged over the users
that have at least one held-out item. Relevance is binary (an item is in the test set or not).

    precision@k  hits in the top k / k
    recall@k     hits in the top k / number of held-out items
    NDCG@k       sum of 1/log2(rank+1) over hits / the same sum for an ideal list
    MAP@k        sum of precision@rank over hits / min(k, number of held-out items)
"""

from __future__ import annotations

import math
import random
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from recsys_core.markdown import markdown_table

DEFAULT_K = 10
TRAIN_RATIO = 0.75
SPLIT_SEED = 42
METRIC_NAMES = ("precision", "recall", "ndcg", "map")


@dataclass(frozen=True)
class Interaction:
    user_id: str
    item_id: str
    weight: float = 1.0
    ts: float = 0.0


def precision_at_k(recommended: Sequence[str], relevant: set[str], k: int = DEFAULT_K) -> float:
    return sum(1 for item in recommended[:k] if item in relevant) / k


def recall_at_k(recommended: Sequence[str], relevant: set[str], k: int = DEFAULT_K) -> float:
    if not relevant:
        return 0.0
    return sum(1 for item in recommended[:k] if item in relevant) / len(relevant)


def ndcg_at_k(recommended: Sequence[str], relevant: set[str], k: int = DEFAULT_K) -> float:
    dcg = sum(1 / math.log2(rank + 2) for rank, item in enumerate(recommended[:k]) if item in relevant)
    ideal = sum(1 / math.log2(rank + 2) for rank in range(min(k, len(relevant))))
    return dcg / ideal if ideal else 0.0


def average_precision_at_k(recommended: Sequence[str], relevant: set[str], k: int = DEFAULT_K) -> float:
    hits, total = 0, 0.0
    for rank, item in enumerate(recommended[:k], start=1):
        if item in relevant:
            hits += 1
            total += hits / rank
    return total / min(k, len(relevant)) if relevant else 0.0


def evaluate(
    recommendations: Mapping[str, Sequence[str]], truth: Mapping[str, set[str]], k: int = DEFAULT_K
) -> dict[str, float]:
    """Mean of each metric over the users with held-out items (a user with no list scores 0)."""
    users = [user for user, items in truth.items() if items]
    if not users:
        return {name: 0.0 for name in METRIC_NAMES}
    functions: dict[str, Callable[[Sequence[str], set[str], int], float]] = {
        "precision": precision_at_k,
        "recall": recall_at_k,
        "ndcg": ndcg_at_k,
        "map": average_precision_at_k,
    }
    return {
        name: sum(fn(recommendations.get(u, ()), truth[u], k) for u in users) / len(users)
        for name, fn in functions.items()
    }


def split_interactions(
    rows: Iterable[Interaction], how: str = "random", ratio: float = TRAIN_RATIO, seed: int = SPLIT_SEED
) -> tuple[list[Interaction], list[Interaction]]:
    """Per-user split: `random` shuffles each user's items with a seeded generator, `time` keeps
    the oldest `ratio` for training. A user with a single interaction stays in training only."""
    if how not in ("random", "time"):
        raise ValueError(f"unknown split {how!r}: expected random or time")
    by_user: dict[str, list[Interaction]] = defaultdict(list)
    for row in rows:
        by_user[row.user_id].append(row)
    train: list[Interaction] = []
    test: list[Interaction] = []
    for user in sorted(by_user):
        # Sorting first makes the split independent of the order rows arrived in.
        items = sorted(by_user[user], key=lambda r: (r.ts, r.item_id) if how == "time" else (r.item_id, r.ts))
        if how == "random":
            random.Random(f"{seed}:{user}").shuffle(items)
        cut = max(1, round(len(items) * ratio))
        train.extend(items[:cut])
        test.extend(items[cut:])
    return train, test


def seen_items(rows: Iterable[Interaction]) -> dict[str, set[str]]:
    seen: dict[str, set[str]] = defaultdict(set)
    for row in rows:
        seen[row.user_id].add(row.item_id)
    return dict(seen)


def popularity_ranking(train: Iterable[Interaction]) -> list[str]:
    """Items by number of distinct training users, ties by item id."""
    counts = Counter(item for _, item in {(r.user_id, r.item_id) for r in train})
    return [item for item, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]


def recommend_popular(
    ranking: Sequence[str], seen: Mapping[str, set[str]], users: Iterable[str], k: int = DEFAULT_K
) -> dict[str, list[str]]:
    """The popularity baseline: the most popular items each user has not seen in training."""
    result = {}
    for user in users:
        skip = seen.get(user, set())
        picked: list[str] = []
        for item in ranking:
            if item not in skip:
                picked.append(item)
                if len(picked) == k:
                    break
        result[user] = picked
    return result


def metrics_table(rows: Mapping[str, Mapping[str, Any]], k: int = DEFAULT_K) -> str:
    """A Markdown table: one row per model, one column per metric."""
    return markdown_table(
        ["model", *(f"{m}@{k}" for m in METRIC_NAMES)],
        [[model, *(f"{float(values[m]):.4f}" for m in METRIC_NAMES)] for model, values in rows.items()],
    )
