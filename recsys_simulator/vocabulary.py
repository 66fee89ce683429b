"""Per-category words the simulated catalog is written with.

Products of one category draw their names and descriptions from that category's words, so a
content-based similarity (TF-IDF over name + description) finds neighbours inside a category and
little across categories — as in a real shop. Beyond the built-in themes, categories get invented
but pronounceable words, seeded like everything else.
"""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True)
class Theme:
    category_id: str
    name: str
    nouns: tuple[str, ...]
    adjectives: tuple[str, ...]
    materials: tuple[str, ...]
    features: tuple[str, ...]
    brands: tuple[str, ...]
    median_price: float


def _theme(
    category_id: str,
    name: str,
    nouns: str,
    adjectives: str,
    materials: str,
    features: str,
    brands: str,
    median_price: float,
) -> Theme:
    split = lambda text: tuple(w.strip() for w in text.split(",") if w.strip())  # noqa: E731
    return Theme(
        category_id,
        name,
        split(nouns),
        split(adjectives),
        split(materials),
        split(features),
        split(brands),
        median_price,
    )


THEMES: tuple[Theme, ...] = (
    _theme(
        "electronics",
        "Electronics",
        "headphones, speaker, charger, smartwatch, tablet, earbuds, camera, router",
        "wireless, compact, portable, smart, fast, noise-cancelling, rechargeable",
        "aluminium, matte plastic, glass",
        "bluetooth pairing, long battery life, usb-c charging, crisp sound, voice assistant",
        "Voltra, Sonique, Kelvix",
        89.0,
    ),
    _theme(
        "books",
        "Books",
        "novel, cookbook, biography, thriller, atlas, poetry collection, guide, memoir",
        "bestselling, illustrated, classic, gripping, award-winning, pocket",
        "hardcover, paperback, linen binding",
        "a page-turning plot, full-colour photographs, an author interview, a new translation",
        "Inkwell, Folio, Quayside",
        18.0,
    ),
    _theme(
        "kitchen",
        "Kitchen",
        "frying pan, knife set, blender, kettle, cutting board, saucepan, espresso maker, mixing bowl",
        "non-stick, stainless, ergonomic, dishwasher-safe, heavy-duty, induction-ready",
        "cast iron, steel, bamboo, ceramic",
        "even heat distribution, a riveted handle, easy cleaning, a precise pour spout",
        "Cucina, Ferro, Hearthly",
        45.0,
    ),
    _theme(
        "fashion",
        "Fashion",
        "sweater, jacket, dress, scarf, shirt, jeans, coat, hoodie",
        "slim-fit, oversized, cosy, breathable, tailored, vintage",
        "merino wool, organic cotton, denim, linen",
        "ribbed cuffs, a relaxed silhouette, hidden pockets, a soft lining",
        "Nordlys, Atelier Nine, Marlowe",
        55.0,
    ),
    _theme(
        "sports",
        "Sports",
        "running shoes, yoga mat, dumbbells, football, tennis racket, water bottle, gym bag, resistance band",
        "lightweight, durable, grippy, professional, adjustable, sweat-wicking",
        "rubber, mesh, neoprene, carbon fibre",
        "extra cushioning, a non-slip surface, quick-dry fabric, a reinforced grip",
        "Stride, Apex, Kinetica",
        40.0,
    ),
    _theme(
        "toys",
        "Toys",
        "building blocks, puzzle, plush bear, board game, toy car, doll house, kite, train set",
        "colourful, educational, wooden, cuddly, creative, family",
        "beech wood, soft plush, recycled plastic",
        "hours of play, rounded safe edges, a storage box, ages three and up",
        "Playwell, Tinker, Bumble",
        25.0,
    ),
    _theme(
        "beauty",
        "Beauty",
        "face cream, lipstick, shampoo, serum, perfume, mascara, body lotion, cleanser",
        "hydrating, fragrance-free, vegan, nourishing, long-lasting, gentle",
        "shea butter, hyaluronic acid, argan oil",
        "dermatologically tested, a light texture, a fresh scent, all skin types",
        "Lumière, Verdant, Saffi",
        22.0,
    ),
    _theme(
        "garden",
        "Garden",
        "hose, pruning shears, planter, lawn mower, seed kit, watering can, garden chair, bird feeder",
        "weatherproof, foldable, outdoor, sturdy, eco-friendly, self-watering",
        "galvanised steel, terracotta, teak",
        "uv resistant finish, drainage holes, a comfortable grip, easy assembly",
        "Greenhaven, Bloom & Root, Terrafirm",
        35.0,
    ),
    _theme(
        "home",
        "Home & Living",
        "lamp, cushion, rug, curtain, vase, wall clock, throw blanket, mirror",
        "minimalist, scandinavian, handmade, velvet, decorative, warm",
        "cotton, oak, brass, wool",
        "a timeless design, soft ambient light, a washable cover, hand-finished details",
        "Haven, Oakline, Maison Clair",
        39.0,
    ),
    _theme(
        "grocery",
        "Grocery",
        "coffee beans, olive oil, green tea, dark chocolate, pasta, honey, granola, spice mix",
        "organic, fair-trade, artisan, roasted, gluten-free, single-origin",
        "arabica, durum wheat, wildflower",
        "rich aroma, a resealable bag, small-batch production, no added sugar",
        "Harvest Lane, Origo, Mielle",
        9.0,
    ),
    _theme(
        "pets",
        "Pets",
        "dog bed, cat tree, leash, pet bowl, chew toy, litter box, pet carrier, grooming brush",
        "washable, chew-proof, orthopedic, reflective, calming, travel",
        "memory foam, nylon, sisal",
        "a non-slip base, easy cleaning, gentle on fur, sized for small and large breeds",
        "Pawsome, Furrow, Whisker & Co",
        29.0,
    ),
    _theme(
        "office",
        "Office",
        "notebook, desk lamp, office chair, fountain pen, monitor stand, planner, backpack, stapler",
        "ergonomic, refillable, premium, adjustable, dotted, compact",
        "recycled paper, leather, mesh",
        "lumbar support, acid-free pages, cable management, a sturdy clip",
        "Scriba, Deskwise, Ledger",
        30.0,
    ),
    _theme(
        "music",
        "Music",
        "acoustic guitar, ukulele, keyboard, vinyl record, drum pad, microphone, guitar strings, metronome",
        "beginner, studio, vintage, handcrafted, digital, resonant",
        "spruce, rosewood, maple",
        "warm tone, a padded gig bag, low action, stage-ready sound",
        "Harmonia, Fretline, Echoworks",
        120.0,
    ),
    _theme(
        "baby",
        "Baby",
        "stroller, baby monitor, high chair, swaddle, teether, changing mat, baby carrier, night light",
        "soft, hypoallergenic, foldable, safe, soothing, newborn",
        "bamboo muslin, organic cotton, silicone",
        "one-hand folding, bpa free, machine washable, a five-point harness",
        "Littlenest, Cocoon, Tiny Tide",
        49.0,
    ),
    _theme(
        "auto",
        "Automotive",
        "dash cam, car charger, seat cover, floor mats, tyre inflator, phone mount, jump starter, wax polish",
        "heavy-duty, universal, waterproof, magnetic, high-gloss, portable",
        "rubber, microfibre, abs plastic",
        "a secure fit, night vision, quick installation, a long power cable",
        "Roadmaster, Torque, Drivewell",
        35.0,
    ),
    _theme(
        "travel",
        "Travel",
        "suitcase, travel pillow, packing cubes, passport wallet, duffel bag, luggage scale, adapter plug, "
        "toiletry bag",
        "carry-on, expandable, lightweight, anti-theft, water-resistant, foldable",
        "polycarbonate, ripstop nylon, leather",
        "spinner wheels, a tsa lock, hidden zip pockets, fits under the seat",
        "Wanderlust, Globetrek, Nomada",
        60.0,
    ),
)

_SYLLABLES = ("ka", "lo", "mi", "ren", "tu", "vor", "sa", "bel", "dri", "no", "quin", "ta", "zel", "po", "ash", "el")


def _word(rng: random.Random, syllables: int) -> str:
    return "".join(rng.choice(_SYLLABLES) for _ in range(syllables))


def invented_theme(index: int, rng: random.Random) -> Theme:
    """A category beyond the built-in themes: invented words, but the same structure."""
    base = _word(rng, 2)
    words = lambda n, s: tuple(_word(rng, s) for _ in range(n))  # noqa: E731
    return Theme(
        category_id=f"{base}-{index + 1}",
        name=f"{base.capitalize()} goods",
        nouns=words(8, 3),
        adjectives=words(6, 2),
        materials=words(3, 2),
        features=tuple(f"{_word(rng, 2)} {_word(rng, 3)}" for _ in range(4)),
        brands=tuple(w.capitalize() for w in words(3, 2)),
        median_price=round(rng.uniform(10, 90), 0),
    )


def themes_for(count: int, rng: random.Random) -> list[Theme]:
    """The first `count` built-in themes, then invented ones."""
    chosen = list(THEMES[:count])
    chosen += [invented_theme(i, rng) for i in range(len(chosen), count)]
    return chosen
