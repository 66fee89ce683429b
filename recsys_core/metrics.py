"""How a recommender is judged: the split protocol, ranking metrics at k and the popularity baseline.

The protocol follows Microsoft Recommenders' benchmarks: each user's interactions are split at
random 75/25 with a fixed seed (or, as an option, by time: the oldest 75% train), every model
ranks the items the user has not seen in training, and the metrics are averaged over the users
that have at least one held-out item. Relevance is binary (an item is in the test set or not).

    precision@k  hits in the top k / k
    recall@k     hits in the top k / number of held-out items
    NDCG@k       sum of 1/log2(rank+1) over hits / the same sum for an ideal list
    MAP@k        sum of precision@rank over hits / min(k, number of held-out items)

Beyond accuracy, over the same lists:

    coverage       distinct products in any list / products in the catalog
    avg_popularity mean over lists of the mean share of training users who have each product
                   (lower is more novel)
    diversity      mean over lists of the share of product pairs in different categories
                   (lists with fewer than two categorised products are left out)
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
SPLITS = ("random", "time")
BEYOND_ACCURACY = ("coverage", "avg_popularity", "diversity")


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


METRICS: dict[str, Callable[[Sequence[str], set[str], int], float]] = {
    "precision": precision_at_k,
    "recall": recall_at_k,
    "ndcg": ndcg_at_k,
    "map": average_precision_at_k,
}


def user_metrics(recommended: Sequence[str], relevant: set[str], k: int = DEFAULT_K) -> dict[str, float]:
    """Every metric of one user's list, in METRIC_NAMES order."""
    return {name: METRICS[name](recommended, relevant, k) for name in METRIC_NAMES}


def evaluate(
    recommendations: Mapping[str, Sequence[str]], truth: Mapping[str, set[str]], k: int = DEFAULT_K
) -> dict[str, float]:
    """Mean of each metric over the users with held-out items (a user with no list scores 0)."""
    users = [user for user, items in truth.items() if items]
    if not users:
        return {name: 0.0 for name in METRIC_NAMES}
    scores = [user_metrics(recommendations.get(u, ()), truth[u], k) for u in users]
    return {name: sum(s[name] for s in scores) / len(users) for name in METRIC_NAMES}


def list_popularity(recommended: Sequence[str], popularity: Mapping[str, float]) -> float:
    """Mean share of training users who have each listed product (0 for an empty list)."""
    return sum(popularity.get(item, 0.0) for item in recommended) / len(recommended) if recommended else 0.0


def intra_list_diversity(recommended: Sequence[str], category_of: Mapping[str, str]) -> float | None:
    """Share of the list's pairs of categorised products whose categories differ; None under two."""
    categories = [category_of[item] for item in recommended if item in category_of]
    pairs = len(categories) * (len(categories) - 1) / 2
    if not pairs:
        return None
    same = sum(n * (n - 1) / 2 for n in Counter(categories).values())
    return 1 - same / pairs


def beyond_accuracy(
    recommendations: Mapping[str, Sequence[str]],
    popularity: Mapping[str, float],
    category_of: Mapping[str, str],
    catalog_size: int,
) -> dict[str, float | None]:
    """coverage, avg_popularity and diversity of every user's list (see the module's docstring)."""
    lists = list(recommendations.values())
    shown = {item for items in lists for item in items}
    diversities = [d for d in (intra_list_diversity(items, category_of) for items in lists) if d is not None]
    return {
        "coverage": len(shown) / catalog_size if catalog_size else 0.0,
        "avg_popularity": sum(list_popularity(items, popularity) for items in lists) / len(lists) if lists else 0.0,
        "diversity": sum(diversities) / len(diversities) if diversities else None,
    }


def split_user(
    rows: Iterable[Interaction], how: str = "random", ratio: float = TRAIN_RATIO, seed: int = SPLIT_SEED
) -> tuple[list[Interaction], list[Interaction]]:
    """One user's split: `random` shuffles the user's items with a generator seeded by the user id,
    `time` keeps the oldest `ratio` for training. A single interaction stays in training."""
    if how not in SPLITS:
        raise ValueError(f"unknown split {how!r}: expected random or time")
    # Sorting first makes the split independent of the order rows arrived in.
    items = sorted(rows, key=lambda r: (r.ts, r.item_id) if how == "time" else (r.item_id, r.ts))
    if how == "random" and items:
        random.Random(f"{seed}:{items[0].user_id}").shuffle(items)
    cut = max(1, round(len(items) * ratio))
    return items[:cut], items[cut:]


def split_interactions(
    rows: Iterable[Interaction], how: str = "random", ratio: float = TRAIN_RATIO, seed: int = SPLIT_SEED
) -> tuple[list[Interaction], list[Interaction]]:
    """Every user's split (split_user), users in id order."""
    if how not in SPLITS:
        raise ValueError(f"unknown split {how!r}: expected random or time")
    by_user: dict[str, list[Interaction]] = defaultdict(list)
    for row in rows:
        by_user[row.user_id].append(row)
    train: list[Interaction] = []
    test: list[Interaction] = []
    for user in sorted(by_user):
        kept, held_out = split_user(by_user[user], how, ratio, seed)
        train.extend(kept)
        test.extend(held_out)
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


def top_unseen(ranking: Sequence[str], skip: set[str], k: int = DEFAULT_K) -> list[str]:
    """The first k items of a ranking the user has not seen in training."""
    picked: list[str] = []
    for item in ranking:
        if item not in skip:
            picked.append(item)
            if len(picked) == k:
                break
    return picked


def recommend_popular(
    ranking: Sequence[str], seen: Mapping[str, set[str]], users: Iterable[str], k: int = DEFAULT_K
) -> dict[str, list[str]]:
    """The popularity baseline: the most popular items each user has not seen in training."""
    return {user: top_unseen(ranking, seen.get(user, set()), k) for user in users}


def metrics_table(rows: Mapping[str, Mapping[str, Any]], k: int = DEFAULT_K) -> str:
    """A Markdown table: one row per model, one column per metric (beyond-accuracy ones where reported)."""
    beyond = [m for m in BEYOND_ACCURACY if any(m in values for values in rows.values())]

    def cell(value: Any) -> str:
        return "n/a" if value is None else f"{float(value):.4f}"

    return markdown_table(
        ["model", *(f"{m}@{k}" for m in METRIC_NAMES), *beyond],
        [[model, *(cell(values.get(m)) for m in (*METRIC_NAMES, *beyond))] for model, values in rows.items()],
    )
