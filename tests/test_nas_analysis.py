import hashlib
import statistics

import pytest

from dfl_toolkit.nas import CellSpace, RandomSearch, search
from dfl_toolkit.nas.analysis import expected_best_of_n, mean_interval, spearman

SPACE = CellSpace()


def score(arch):
    """A fixed pseudo-random score per isomorphism class, like a benchmark table's accuracy."""
    digest = hashlib.sha256(SPACE.canonical(arch).encode()).digest()
    return int.from_bytes(digest[:4], "big") / 2**32


def test_simulated_random_search_matches_the_closed_form_best_of_n():
    all_scores = [score(a) for a in SPACE.enumerate()]
    for n in (5, 20):
        bests = [search(SPACE, RandomSearch(), lambda a, s: {"val_acc": score(a)}, n, seed=seed, progress=False)
                 .best.result["val_acc"] for seed in range(300)]
        mean, half = mean_interval(bests)
        expected = expected_best_of_n(all_scores, n)
        assert abs(mean - expected) < max(half, 1e-3), (n, mean, expected, half)
    assert expected_best_of_n(all_scores, 1) == pytest.approx(statistics.fmean(all_scores))


def test_expected_best_of_n_small_cases_and_errors():
    assert expected_best_of_n([0.0, 1.0], 2) == 0.75
    assert expected_best_of_n([3.0], 10) == 3.0
    with pytest.raises(ValueError):
        expected_best_of_n([], 3)
    assert spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)


def judged(arch):
    """A second fixed score, loosely tied to the first, as test accuracy is to one run's val accuracy."""
    digest = hashlib.sha256(("judged" + SPACE.canonical(arch)).encode()).digest()
    return 0.5 * score(arch) + 0.5 * int.from_bytes(digest[:4], "big") / 2**32


def test_random_search_picking_by_a_noisy_signal_matches_the_closed_form():
    def signal(arch):
        return round(score(arch), 1)  # coarse, so many cells tie (as accuracies on 500 images do)

    archs = list(SPACE.enumerate())
    signals, values = [signal(a) for a in archs], [judged(a) for a in archs]
    for n in (5, 20):
        picked = [search(SPACE, RandomSearch(), lambda a, s: {"val_acc": signal(a), "test_acc": judged(a)}, n,
                         seed=seed, progress=False).best.result["test_acc"] for seed in range(300)]
        mean, half = mean_interval(picked)
        expected = expected_best_of_n(signals, n, judged_by=values)
        assert abs(mean - expected) < max(half, 1e-3), (n, mean, expected, half)
        assert expected < expected_best_of_n(values, n)  # picking by the signal loses to picking by the judge
    assert expected_best_of_n([0.0, 1.0, 1.0], 50, judged_by=[9.0, 2.0, 4.0]) == pytest.approx(3.0)
    with pytest.raises(ValueError, match="one value per score"):
        expected_best_of_n([0.0, 1.0], 2, judged_by=[1.0])
    with pytest.raises(ValueError, match="must not contain NaN"):
        expected_best_of_n([0.0, float("nan")], 2, judged_by=[1.0, 0.0])
    with pytest.raises(ValueError, match="flat sequence"):
        expected_best_of_n([[0.0, 1.0]], 2)
