"""EASE, a linear item model (Steck, "Embarrassingly Shallow Autoencoders", WWW 2019).

With X the users x products interaction matrix (binary or weighted) and G = XᵀX its Gram matrix,

    P = (G + λI)⁻¹        B = I − P · diag(1 / diag(P))        (so diag(B) = 0)

and a shopper's scores are x_u · B: each product they have is worth B[j] to every other product.
The zero diagonal is what keeps a product from recommending itself. λ is given
relative to the mean of diag(G) (a product's mean number of shoppers, or its mean squared
strength): the same relative value suits binary and weighted X and any shop's event weights,
where an absolute one would have to be tuned again for each. B is products x products and
dense, so it is built and held on one machine: 20,000 products take 3.2 GB in float64 while it
is inverted, 1.6 GB as the float32 that is kept and broadcast.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

# Past this many products B no longer fits comfortably on the driver and in every Python worker.
MAX_PRODUCTS = 20_000


def penalty(gram: np.ndarray, relative_l2: float) -> float:
    """The absolute λ of a relative one: relative_l2 times the mean of diag(XᵀX)."""
    if relative_l2 <= 0:
        raise ValueError(f"λ must be positive, not {relative_l2}")
    return relative_l2 * max(float(np.mean(np.diag(gram))), 1e-12) if gram.size else relative_l2


def ease_weights(gram: np.ndarray, l2: float) -> np.ndarray:
    """B (float32) from the Gram matrix XᵀX and the L2 penalty λ."""
    if gram.ndim != 2 or gram.shape[0] != gram.shape[1]:
        raise ValueError(f"the Gram matrix must be square, not {gram.shape}")
    if gram.shape[0] > MAX_PRODUCTS:
        raise ValueError(f"EASE holds a dense products x products matrix: {gram.shape[0]} > {MAX_PRODUCTS} products")
    if l2 <= 0:
        raise ValueError(f"λ must be positive, not {l2}")
    regularised = gram.astype(np.float64, copy=True)
    regularised[np.diag_indices_from(regularised)] += l2
    precision = np.linalg.inv(regularised)
    weights = precision / -np.diag(precision)
    weights[np.diag_indices_from(weights)] = 0.0
    return weights.astype(np.float32)


def ease_scores(weights: np.ndarray, rows: Sequence[int], values: Sequence[float]) -> np.ndarray:
    """x_u · B for a shopper whose products are `rows` of B with strengths `values` (1.0 each if binary)."""
    if not len(rows):
        return np.zeros(weights.shape[1], dtype=weights.dtype)
    return np.asarray(values, dtype=weights.dtype) @ weights[np.asarray(rows, dtype=np.intp)]
