"""EASE's closed form (recsys_core.ease): B's zero diagonal, the least-squares fit it solves, its scores."""

from __future__ import annotations

import numpy as np
import pytest

from recsys_core.ease import MAX_PRODUCTS, ease_scores, ease_weights, penalty

X = np.array(
    [
        [1, 1, 0, 0],
        [1, 1, 1, 0],
        [0, 1, 1, 0],
        [0, 0, 1, 1],
        [1, 0, 0, 1],
    ],
    dtype=np.float64,
)


def test_a_product_never_recommends_itself():
    weights = ease_weights(X.T @ X, 1.0)
    assert weights.dtype == np.float32
    assert np.all(np.diag(weights) == 0)


def test_each_column_is_the_ridge_regression_of_that_product_on_the_others():
    l2 = 2.0
    weights = ease_weights(X.T @ X, l2)
    for j in range(X.shape[1]):
        others = [i for i in range(X.shape[1]) if i != j]
        a = X[:, others]
        expected = np.linalg.solve(a.T @ a + l2 * np.eye(len(others)), a.T @ X[:, j])
        assert np.allclose(weights[others, j], expected, atol=1e-5)


def test_scores_are_the_shoppers_products_times_b():
    weights = ease_weights(X.T @ X, 1.0)
    assert np.allclose(ease_scores(weights, [0, 2], [1.0, 3.0]), weights[0] + 3 * weights[2])
    assert not ease_scores(weights, [], []).any()


def test_penalty_is_relative_to_the_mean_diagonal_of_the_gram_matrix():
    gram = X.T @ X
    assert penalty(gram, 2.0) == pytest.approx(2.0 * np.mean(np.diag(gram)))
    with pytest.raises(ValueError, match="positive"):
        penalty(gram, 0.0)


def test_a_catalog_beyond_the_limit_is_refused_before_it_is_inverted():
    class Huge:
        ndim, shape = 2, (MAX_PRODUCTS + 1, MAX_PRODUCTS + 1)

        def astype(self, *args, **kwargs):
            raise AssertionError("inverted anyway")

    with pytest.raises(ValueError, match="products"):
        ease_weights(Huge(), 1.0)  # type: ignore[arg-type]
