"""The simulated shop: a catalog with a long tail of popularity and shoppers with tastes.

`build_store(StoreConfig(...))` is pure and seeded: the same config gives the same products,
prices, names and shoppers. Each part draws from its own random stream (derived from the seed), so
changing the number of shoppers does not change the catalog.
"""

from __future__ import annotations

import bisect
import itertools
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from recsys_core.errors import RecsysError
from recsys_simulator.vocabulary import Theme, themes_for

# Zipf exponent of product popularity: a few products get most of the attention.
POPULARITY_EXPONENT = 1.1
# Mean sessions per shopper per day; activity is log-normal, so a few shoppers come back daily.
MEAN_SESSIONS_PER_DAY = 0.3
MAX_SESSIONS_PER_DAY = 3.0
MAX_USER_PREFIX = 64
T = TypeVar("T")


class StoreConfigError(RecsysError):
    """A simulated store cannot be built with these sizes."""


@dataclass(frozen=True)
class StoreConfig:
    seed: int = 42
    products: int = 500
    categories: int = 12
    users: int = 2000
    # Prepended to every user id, so several simulated populations (or test runs) never mix.
    user_prefix: str = ""

    def __post_init__(self) -> None:
        if self.categories < 1:
            raise StoreConfigError("a store needs at least 1 category")
        if self.products < self.categories:
            raise StoreConfigError(
                f"{self.products} products cannot fill {self.categories} categories "
                "(every category needs at least one product)"
            )
        if self.users < 1:
            raise StoreConfigError("a store needs at least 1 user")
        if len(self.user_prefix) > MAX_USER_PREFIX or any(c.isspace() for c in self.user_prefix):
            raise StoreConfigError(f"user prefix must be at most {MAX_USER_PREFIX} characters without spaces")


@dataclass(frozen=True)
class Category:
    category_id: str
    name: str
    theme: Theme


@dataclass(frozen=True)
class Product:
    product_id: str
    category_id: str
    name: str
    description: str
    price: float
    brand: str
    popularity: float  # relative chance of being looked at within its category

    def catalog_record(self) -> dict[str, Any]:
        """The product as a catalog item (the canonical form of `recsys_core.catalog.parse_product`)."""
        return {
            "product_id": self.product_id,
            "category_id": self.category_id,
            "name": self.name,
            "description": self.description,
            "price": self.price,
            "attributes": {"brand": self.brand},
        }


@dataclass(frozen=True)
class Shopper:
    user_id: str
    preferred_categories: tuple[str, ...]  # 1 to 3, most liked first
    sessions_per_day: float


@dataclass
class Store:
    config: StoreConfig
    categories: list[Category]
    products: list[Product]
    shoppers: list[Shopper]
    # Derived lookups for fast weighted picks (filled in __post_init__).
    product_by_id: dict[str, Product] = field(init=False, repr=False)
    category_products: dict[str, list[Product]] = field(init=False, repr=False)
    category_cum_weights: dict[str, list[float]] = field(init=False, repr=False)
    category_ids: list[str] = field(init=False, repr=False)
    category_cum_popularity: list[float] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.product_by_id = {p.product_id: p for p in self.products}
        self.category_products = {c.category_id: [] for c in self.categories}
        for product in self.products:
            self.category_products[product.category_id].append(product)
        self.category_cum_weights = {
            cid: list(itertools.accumulate(p.popularity for p in products))
            for cid, products in self.category_products.items()
        }
        self.category_ids = [c.category_id for c in self.categories]
        self.category_cum_popularity = list(
            itertools.accumulate(self.category_cum_weights[cid][-1] for cid in self.category_ids)
        )

    def pick_product(self, category_id: str, rng: random.Random) -> Product:
        """A product of the category, the popular ones far more often (long tail)."""
        return pick(self.category_products[category_id], self.category_cum_weights[category_id], rng)

    def pick_category(self, rng: random.Random) -> str:
        """Any category, weighted by how popular its products are."""
        return pick(self.category_ids, self.category_cum_popularity, rng)


def pick(items: Sequence[T], cum_weights: Sequence[float], rng: random.Random) -> T:
    """One weighted pick: `rng.choices(items, cum_weights=...)[0]` without building a list (hot path)."""
    return items[bisect.bisect(cum_weights, rng.random() * cum_weights[-1], 0, len(cum_weights) - 1)]


def _price(theme: Theme, rng: random.Random) -> float:
    """Log-normal around the category's median, ending in .99 or .49 like shop prices."""
    raw = theme.median_price * math.exp(rng.gauss(0, 0.55))
    return max(0.99, math.floor(raw) + rng.choice((0.99, 0.99, 0.49)))


def _name_and_description(theme: Theme, rng: random.Random) -> tuple[str, str, str]:
    brand, adjective, noun = rng.choice(theme.brands), rng.choice(theme.adjectives), rng.choice(theme.nouns)
    material = rng.choice(theme.materials)
    first, second = rng.sample(theme.features, 2)
    name = f"{brand} {adjective.capitalize()} {noun.title()}"
    description = (
        f"{adjective.capitalize()} {noun} in {material} from {brand}, with {first} and {second}. "
        f"Part of our {theme.name.lower()} range."
    )
    return name, description, brand


def _catalog(config: StoreConfig, rng: random.Random) -> tuple[list[Category], list[Product]]:
    categories = [Category(t.category_id, t.name, t) for t in themes_for(config.categories, rng)]
    # Category sizes vary; every category gets at least one product.
    shares = [rng.uniform(0.6, 1.4) for _ in categories]
    sizes = [1] * len(categories)
    extra = config.products - len(categories)
    picks = rng.choices(range(len(categories)), weights=shares, k=extra)
    for index in picks:
        sizes[index] += 1
    # Popularity ranks are a shuffle of the whole catalog: the head is spread over categories.
    ranks = list(range(1, config.products + 1))
    rng.shuffle(ranks)
    products, names, number = [], set(), 0
    for category, size in zip(categories, sizes):
        for _ in range(size):
            name, description, brand = _name_and_description(category.theme, rng)
            while name in names:
                name = f"{name} {rng.choice(('II', 'Plus', 'Pro', 'Mini', 'XL', 'Lite'))}"
            names.add(name)
            products.append(
                Product(
                    product_id=f"p{number + 1:05d}",
                    category_id=category.category_id,
                    name=name,
                    description=description,
                    price=_price(category.theme, rng),
                    brand=brand,
                    popularity=1.0 / ranks[number] ** POPULARITY_EXPONENT,
                )
            )
            number += 1
    return categories, products


def _shoppers(
    config: StoreConfig, categories: list[Category], category_weight: list[float], rng: random.Random
) -> list[Shopper]:
    ids = [c.category_id for c in categories]
    sigma = 0.8  # spread of activity; mu keeps the mean at MEAN_SESSIONS_PER_DAY
    mu = math.log(MEAN_SESSIONS_PER_DAY) - sigma**2 / 2
    shoppers = []
    width = max(5, len(str(config.users)))
    for index in range(config.users):
        count = min(len(ids), rng.choice((1, 2, 2, 3)))
        preferred: list[str] = []
        while len(preferred) < count:
            # Popular categories attract more fans, but every category has some.
            candidate = rng.choices(ids, weights=category_weight)[0]
            if candidate not in preferred:
                preferred.append(candidate)
        shoppers.append(
            Shopper(
                user_id=f"{config.user_prefix}u{index + 1:0{width}d}",
                preferred_categories=tuple(preferred),
                sessions_per_day=min(MAX_SESSIONS_PER_DAY, rng.lognormvariate(mu, sigma)),
            )
        )
    return shoppers


def build_store(config: StoreConfig) -> Store:
    categories, products = _catalog(config, random.Random(f"{config.seed}:catalog"))
    popularity = {c.category_id: 0.0 for c in categories}
    for product in products:
        popularity[product.category_id] += product.popularity
    # Square root: category fandom is less skewed than product popularity.
    weights = [math.sqrt(popularity[c.category_id]) for c in categories]
    shoppers = _shoppers(config, categories, weights, random.Random(f"{config.seed}:shoppers"))
    return Store(config, categories, products, shoppers)
