"""A/B tests between strategies and models: their definition, who sees which variant, and the verdict.

A shopper's variant is a hash of (experiment, shopper) mapped onto the variants' shares, so the
same shopper always sees the same variant, any process computes it without a lookup, and each
experiment shuffles shoppers independently of every other one. Results compare each variant's
click-through rate (clicks / products shown) with the first variant's by a two-proportion z-test.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from recsys_core.errors import RecsysError

SURFACES = ("recommendations", "bestsellers")
STRATEGIES = ("bestsellers", "category_bestsellers", "model", "realtime")
SIGNIFICANCE = 0.05
Z_95 = 1.959963984540054  # the normal distribution's 97.5th percentile: a two-sided 95 % interval
SHARE_TOLERANCE = 1e-6
WINNER_PREFIX = "winner: "  # a decision naming the winning variant


class ExperimentError(RecsysError):
    """A definition the platform cannot run, naming the field and why."""

    def __init__(self, field: str, reason: str):
        self.field = field
        self.reason = reason
        super().__init__(f"{field}: {reason}")


@dataclass(frozen=True)
class Variant:
    name: str
    share: float
    strategy: str | None = None
    model_version: str | None = None

    def as_dict(self) -> dict[str, Any]:
        serves = {"strategy": self.strategy} if self.strategy else {"model_version": self.model_version}
        return {"name": self.name, "share": self.share, **serves}


@dataclass(frozen=True)
class Experiment:
    name: str
    surface: str
    variants: tuple[Variant, ...]
    starts_at: datetime
    ends_at: datetime | None = None

    def is_running(self, now: datetime) -> bool:
        return self.starts_at <= now and (self.ends_at is None or now < self.ends_at)

    def variant_of(self, user_id: str) -> Variant:
        return assign(self.name, self.variants, user_id)

    def stopped(self, now: datetime) -> Experiment:
        """The experiment ended at `now`, unless it had already ended."""
        if self.ends_at is not None and self.ends_at <= now:
            return self
        return dataclasses.replace(self, ends_at=now, starts_at=min(self.starts_at, now))

    def status(self, now: datetime) -> str:
        if now < self.starts_at:
            return "scheduled"
        return "running" if self.is_running(now) else "ended"

    def as_document(self) -> dict[str, Any]:
        """The stored form (keyed by name), which `from_document` reads back."""
        return {
            "_id": self.name,
            "name": self.name,
            "surface": self.surface,
            "variants": [v.as_dict() for v in self.variants],
            "starts_at": self.starts_at,
            "ends_at": self.ends_at,
        }

    @classmethod
    def from_document(cls, document: Mapping[str, Any]) -> Experiment:
        variants = tuple(
            Variant(v["name"], float(v["share"]), v.get("strategy"), v.get("model_version"))
            for v in document["variants"]
        )
        return cls(document["name"], document["surface"], variants, document["starts_at"], document.get("ends_at"))


def running_on(experiments: Sequence[Experiment], surface: str, now: datetime) -> Experiment | None:
    """The experiment a surface's lists follow now: the running one that started last (one per surface is served)."""
    running = [e for e in experiments if e.surface == surface and e.is_running(now)]
    return max(running, key=lambda e: (e.starts_at, e.name)) if running else None


def _variant(index: int, body: Any) -> Variant:
    where = f"variants[{index}]"
    if not isinstance(body, Mapping):
        raise ExperimentError(where, "must be an object with name, share and strategy or model_version")
    name, share = body.get("name"), body.get("share")
    if not isinstance(name, str) or not name.strip():
        raise ExperimentError(f"{where}.name", "must be a non-empty string")
    if isinstance(share, bool) or not isinstance(share, int | float) or not 0 < share <= 1:
        raise ExperimentError(f"{where}.share", "must be a number above 0 and at most 1")
    strategy, version = body.get("strategy"), body.get("model_version")
    if (strategy is None) == (version is None):
        raise ExperimentError(where, "give exactly one of strategy and model_version")
    if strategy is not None and strategy not in STRATEGIES:
        raise ExperimentError(f"{where}.strategy", f"must be one of {', '.join(STRATEGIES)}")
    if version is not None and (not isinstance(version, str) or not version):
        raise ExperimentError(f"{where}.model_version", "must be a model version (see `recsys model list`)")
    return Variant(name, float(share), strategy, version)


def parse_experiment(name: str, body: Any, now: datetime) -> Experiment:
    """Validate a definition (the body of PUT /v1/experiments/{name}); starts now unless `starts_at` says."""
    if not name or len(name) > 100:
        raise ExperimentError("name", "must be 1 to 100 characters")
    if not isinstance(body, Mapping):
        raise ExperimentError("body", "must be a JSON object")
    surface = body.get("surface")
    if surface not in SURFACES:
        raise ExperimentError("surface", f"must be one of {', '.join(SURFACES)}")
    variants = body.get("variants")
    if not isinstance(variants, list) or len(variants) < 2:
        raise ExperimentError("variants", "must list at least two variants")
    parsed = tuple(_variant(i, v) for i, v in enumerate(variants))
    if len({v.name for v in parsed}) != len(parsed):
        raise ExperimentError("variants", "names must differ")
    if abs(sum(v.share for v in parsed) - 1) > SHARE_TOLERANCE:
        raise ExperimentError("variants", f"shares must sum to 1 (they sum to {sum(v.share for v in parsed):g})")
    starts_at = _instant(body, "starts_at") or now
    ends_at = _instant(body, "ends_at")
    if ends_at is not None and ends_at <= starts_at:
        raise ExperimentError("ends_at", "must be after starts_at")
    return Experiment(name, surface, parsed, starts_at, ends_at)


def _instant(body: Mapping, field: str) -> datetime | None:
    value = body.get(field)
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        parsed = None
    if parsed is None or parsed.tzinfo is None:
        raise ExperimentError(field, "must be an ISO 8601 time with a zone, e.g. 2026-12-31T00:00:00Z")
    return parsed


def bucket(experiment: str, user_id: str) -> float:
    """A number in [0, 1) fixed by (experiment, shopper) and uniform over shoppers."""
    digest = hashlib.sha256(f"{experiment}\0{user_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def assign(experiment: str, variants: Sequence[Variant], user_id: str) -> Variant:
    """The shopper's variant: the one whose slice of [0, 1) (in the order given) holds their bucket."""
    point, edge = bucket(experiment, user_id), 0.0
    for variant in variants:
        edge += variant.share
        if point < edge:
            return variant
    return variants[-1]  # shares summing to 1 within rounding


@dataclass(frozen=True)
class ProportionTest:
    difference: float
    interval: tuple[float, float]
    p_value: float


def two_proportion_test(successes_a: int, trials_a: int, successes_b: int, trials_b: int) -> ProportionTest | None:
    """B's rate minus A's, its 95 % interval (unpooled) and the two-sided z-test's p-value (pooled);
    None while either side has no trials."""
    if trials_a <= 0 or trials_b <= 0:
        return None
    rate_a, rate_b = successes_a / trials_a, successes_b / trials_b
    difference = rate_b - rate_a
    spread = math.sqrt(rate_a * (1 - rate_a) / trials_a + rate_b * (1 - rate_b) / trials_b)
    pooled = (successes_a + successes_b) / (trials_a + trials_b)
    pooled_spread = math.sqrt(pooled * (1 - pooled) * (1 / trials_a + 1 / trials_b))
    p_value = 1.0 if pooled_spread == 0 else math.erfc(abs(difference / pooled_spread) / math.sqrt(2))
    return ProportionTest(difference, (difference - Z_95 * spread, difference + Z_95 * spread), p_value)


@dataclass(frozen=True)
class VariantCounts:
    variant: str
    shoppers: int
    lists: int
    products_shown: int
    clicks: int
    orders: int


def _rate(part: int, whole: int) -> float:
    return part / whole if whole else 0.0


def experiment_results(counts: Sequence[VariantCounts]) -> tuple[list[dict[str, Any]], str]:
    """Each variant's figures against the first one's, and the decision: `winner: NAME` when a
    variant's CTR differs significantly from the first's (the best such one), else `no difference yet`."""
    if not counts:
        return [], "no difference yet"
    first = counts[0]
    rows: list[dict[str, Any]] = []
    for c in counts:
        test = (
            None if c is first else two_proportion_test(first.clicks, first.products_shown, c.clicks, c.products_shown)
        )
        rows.append(
            {
                "variant": c.variant,
                "shoppers": c.shoppers,
                "lists": c.lists,
                "clicks": c.clicks,
                "ctr": _rate(c.clicks, c.products_shown),
                "orders": c.orders,
                "conversion": _rate(c.orders, c.lists),
                "ctr_difference": None if test is None else test.difference,
                "ctr_interval": None if test is None else list(test.interval),
                "p_value": None if test is None else test.p_value,
            }
        )
    significant = [r for r in rows[1:] if r["p_value"] is not None and r["p_value"] < SIGNIFICANCE]
    if not significant:
        return rows, "no difference yet"
    better = [r for r in significant if r["ctr_difference"] > 0]
    best = max(better, key=lambda r: r["ctr"]) if better else rows[0]
    return rows, f"{WINNER_PREFIX}{best['variant']}"


def significantly_worse(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """Variants whose CTR is significantly below the first variant's."""
    return [
        r["variant"]
        for r in rows
        if r.get("p_value") is not None and r["p_value"] < SIGNIFICANCE and r["ctr_difference"] < 0
    ]


def winning_model_version(experiment: Experiment, decision: str | None) -> str:
    """The model version to promote for `experiment`'s decision; ExperimentError when there is none:
    no winner yet, or the winner serves a strategy rather than a model version."""
    if not decision or not decision.startswith(WINNER_PREFIX):
        raise ExperimentError(
            "decision", f"experiment {experiment.name!r} has no winner ({decision or 'no results yet'})"
        )
    name = decision.removeprefix(WINNER_PREFIX)
    winner = next((v for v in experiment.variants if v.name == name), None)
    if winner is None:
        raise ExperimentError("decision", f"the winner {name!r} is not a variant of {experiment.name!r}")
    if winner.model_version is None:
        raise ExperimentError(
            "decision", f"the winner {name!r} serves the strategy {winner.strategy!r}, not a model version"
        )
    return winner.model_version
