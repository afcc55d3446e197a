"""pass@k against brute-force enumeration of k-subsets."""
import itertools
import math

import pytest

from evals.pass_at_k import mean_pass_at_k, pass_at_k


def _brute(n, c, k):
    samples = [True] * c + [False] * (n - c)
    subsets = list(itertools.combinations(range(n), k))
    return sum(any(samples[i] for i in s) for s in subsets) / len(subsets)


@pytest.mark.parametrize("n", range(1, 9))
def test_matches_enumeration(n):
    for c in range(n + 1):
        for k in range(1, n + 1):
            assert pass_at_k(n, c, k) == pytest.approx(_brute(n, c, k), abs=1e-12), (n, c, k)


def test_closed_form_and_large_n_is_stable():
    assert pass_at_k(200, 13, 1) == pytest.approx(13 / 200)
    exact = 1 - math.comb(190, 100) / math.comb(200, 100)
    assert pass_at_k(200, 10, 100) == pytest.approx(exact, rel=1e-12)
    assert 0.0 <= pass_at_k(10_000, 1, 10) <= 1.0


def test_mean_and_errors():
    assert mean_pass_at_k([(2, 1), (2, 0), (2, 2)], 1) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="k <= n"):
        pass_at_k(3, 1, 4)
    with pytest.raises(ValueError, match="c <= n"):
        pass_at_k(3, 4, 1)
    with pytest.raises(ValueError, match="no tasks"):
        mean_pass_at_k([], 1)
