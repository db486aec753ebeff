"""The leaderboard's statistics: known answers, Demšar's worked example, an independent package,
and the order and marks of a leaderboard built from stored predictions."""

from __future__ import annotations

import math

import numpy as np
import pytest
from results_factory import balanced_labels, make_pair, make_results, predictions, write_run

from seqbench.reporting.leaderboard import (
    across_datasets,
    caveat,
    check_same_data,
    entries,
    leaderboard,
    leaderboards,
)
from seqbench.reporting.significance import holm, nemenyi_cd, prediction_test, rank_test, ranks, seed_test
from seqbench.results import ResultsError

# Demšar (2006), Table 6: AUC of C4.5 and three variants on 14 UCI datasets. The paper's ranks
# order the voting row's tie 0.975 / 0.975 (rounded in the table) as C4.5+cf ahead of C4.5+m+cf,
# hence 0.97501 here; with it the mean ranks are the paper's 3.143, 2.000, 2.893, 1.964.
DEMSAR_NAMES = ["C4.5", "C4.5+m", "C4.5+cf", "C4.5+m+cf"]
DEMSAR_AUC = np.array([
    [0.763, 0.768, 0.771, 0.798], [0.599, 0.591, 0.590, 0.569], [0.954, 0.971, 0.968, 0.967],
    [0.628, 0.661, 0.654, 0.657], [0.882, 0.888, 0.886, 0.898], [0.936, 0.931, 0.916, 0.931],
    [0.661, 0.668, 0.609, 0.685], [0.583, 0.583, 0.563, 0.625], [0.775, 0.838, 0.866, 0.875],
    [1.000, 1.000, 1.000, 1.000], [0.940, 0.962, 0.965, 0.962], [0.619, 0.666, 0.614, 0.669],
    [0.972, 0.981, 0.97501, 0.975], [0.957, 0.978, 0.946, 0.970],
])


# --- Holm ------------------------------------------------------------------------------------


def test_holm_on_a_hand_computed_family():
    # sorted: 0.005 (×4 = 0.02), 0.01 (×3 = 0.03), 0.03 (×2 = 0.06), 0.04 (×1 = 0.04 → 0.06, monotone)
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])  # capped at 1
    assert holm([0.02]) == [0.02]
    assert holm([]) == []


def test_holm_agrees_with_statsmodels():
    multipletests = pytest.importorskip("statsmodels.stats.multitest").multipletests
    p = list(np.random.default_rng(3).uniform(0, 0.2, 12))
    assert holm(p) == pytest.approx(list(multipletests(p, method="holm")[1]))


# --- two models ------------------------------------------------------------------------------


def test_a_model_right_on_every_sample_the_other_gets_wrong_is_significantly_better():
    a = np.ones((1, 200), bool)
    b = np.r_[np.ones(150, bool), np.zeros(50, bool)][None]
    d = prediction_test(a, b)
    assert d.method == "McNemar's exact test"
    assert d.diff == pytest.approx(0.25)
    assert d.p == pytest.approx(2 * 0.5**50)  # 50 discordant samples, all one way
    assert d.low > 0


def test_mcnemar_agrees_with_statsmodels():
    mcnemar = pytest.importorskip("statsmodels.stats.contingency_tables").mcnemar
    rng = np.random.default_rng(0)
    a, b = rng.random(400) < 0.8, rng.random(400) < 0.75
    table = [[np.sum(a & b), np.sum(a & ~b)], [np.sum(~a & b), np.sum(~a & ~b)]]
    assert prediction_test(a[None], b[None]).p == pytest.approx(mcnemar(table, exact=True).pvalue)


def test_identical_models_are_not_different():
    correct = np.random.default_rng(1).random((3, 500)) < 0.7
    d = prediction_test(correct, correct.copy())
    assert (d.diff, d.p) == (0.0, 1.0)
    assert d.can_reject()  # 500 samples could have shown a difference: the tie means something


def test_several_seeds_use_the_signed_rank_test_over_samples():
    rng = np.random.default_rng(2)
    b = rng.random((3, 2000)) < 0.7
    a = b | (rng.random((3, 2000)) < 0.1)  # a is b plus some extra right answers
    d = prediction_test(a, b)
    assert d.method == "Wilcoxon signed-rank test over samples"
    assert d.diff == pytest.approx(float(a.mean() - b.mean()))
    assert d.p < 0.001 and d.low > 0
    assert "3 seeds" in d.over


def test_seed_test_cannot_reject_with_three_seeds_against_three():
    d = seed_test([0.65, 0.66, 0.67], [0.60, 0.61, 0.62])
    assert d.p == pytest.approx(0.1)  # the most extreme of C(6,3) = 20 splits and its mirror
    assert d.p_min == pytest.approx(0.1) and not d.can_reject(0.05)
    assert d.diff == pytest.approx(0.05)


# --- Friedman and Nemenyi: Demšar's worked example --------------------------------------------


def test_mean_ranks_friedman_and_critical_difference_on_demsars_example():
    test = rank_test(DEMSAR_AUC, DEMSAR_NAMES)
    assert [round(r, 3) for r in test.mean_ranks] == [3.143, 2.000, 2.893, 1.964]
    # Demšar's χ²_F = 9.28 has no tie correction; scipy divides by 1 − Σ(t³ − t) / (N k (k² − 1)),
    # the ties being iris (2), lung cancer (2), mushroom (4) and primary tumor (2): Σ = 78.
    correction = 1 - 78 / (14 * 4 * 15)
    assert test.friedman_chi2 * correction == pytest.approx(9.28, abs=0.005)
    assert test.friedman_p < 0.05
    # CD = q_0.05 · √(k(k+1)/6N) = 2.569 · √(20/84) = 1.25; at α = 0.10, q = 2.291: 1.12
    assert test.cd == pytest.approx(1.25, abs=0.005)
    assert nemenyi_cd(4, 14, 0.10) == pytest.approx(2.291 * math.sqrt(20 / 84), abs=0.002)
    # The paper: at 0.05 even the best and the worst (3.143 − 1.964 = 1.179) are within the CD;
    # at 0.10 C4.5+m+cf and C4.5+m are significantly better than C4.5, and "the data is not
    # sufficient to reach any conclusion regarding C4.5+cf".
    assert test.order() == ["C4.5+m+cf", "C4.5+m", "C4.5+cf", "C4.5"]
    assert test.groups == [["C4.5+m+cf", "C4.5+m", "C4.5+cf", "C4.5"]]
    at_10 = rank_test(DEMSAR_AUC, DEMSAR_NAMES, alpha=0.10)
    assert at_10.groups == [["C4.5+m+cf", "C4.5+m", "C4.5+cf"], ["C4.5+cf", "C4.5"]]


def test_nemenyi_decisions_agree_with_scikit_posthocs():
    sp = pytest.importorskip("scikit_posthocs")
    rng = np.random.default_rng(7)
    for scores in (DEMSAR_AUC, rng.random((12, 5)) + np.linspace(0, 0.5, 5)):
        test = rank_test(scores, [f"m{i}" for i in range(scores.shape[1])])
        p = np.asarray(sp.posthoc_nemenyi_friedman(scores))
        r = np.asarray(test.mean_ranks)
        for i in range(len(r)):
            for j in range(i + 1, len(r)):
                assert (abs(r[i] - r[j]) > test.cd) == (p[i, j] < 0.05), (i, j)


def test_ranks_share_ties_and_rank_the_highest_first():
    assert ranks(np.array([[0.9, 0.8, 0.9]])).tolist() == [[1.5, 3.0, 1.5]]


def test_two_datasets_cannot_separate_three_models_and_the_caveat_says_so():
    test = rank_test(np.array([[0.9, 0.8, 0.7], [0.95, 0.85, 0.75]]), ["a", "b", "c"])
    assert test.mean_ranks == [1.0, 2.0, 3.0]
    assert test.cd > 2.0  # the widest possible difference of mean ranks is k − 1 = 2
    assert test.groups == [["a", "b", "c"]]
    assert "no pair of models can be found different" in caveat(test)


# --- a leaderboard from stored predictions ----------------------------------------------------

N = 2000


def _run(tmp_path, name, model_accuracies: dict[str, list[np.ndarray]], dataset="mnist", fingerprint="a"):
    """A run directory with one ok pair per model and seed, and its predictions."""
    labels = balanced_labels(N)
    pairs, preds = [], {}
    run_dir = tmp_path / name
    results = make_results([])
    for model, masks in model_accuracies.items():
        for seed, mask in enumerate(masks):
            pair = make_pair(
                model, dataset, seed, accuracy=float(mask.mean()), fingerprint="sha256:" + fingerprint * 64
            )
            pair["metrics"]["accuracy"]["accuracy"] = float(mask.mean())
            pairs.append(pair)
            preds[(model, seed)] = predictions(labels, mask)
    results = make_results(pairs)
    write_run(run_dir, results)
    from seqbench.results import write_predictions

    for pair in pairs:
        write_predictions(run_dir, pair, preds[pair["model"], pair["seed"]])
    return name, results, run_dir


def _masks(rng, base: np.ndarray, extra: float) -> np.ndarray:
    return base | (rng.random(N) < extra)


def test_leaderboard_order_and_marks_on_stored_predictions(tmp_path):
    rng = np.random.default_rng(11)
    base = [rng.random(N) < 0.8 for _ in range(3)]
    run = _run(tmp_path, "run", {
        "weak": [b & (rng.random(N) < 0.9) for b in base],  # worse on every seed
        "best": [_masks(rng, b, 0.3) for b in base],        # right wherever "twin" is, and more
        "twin": base,
        "same": [b.copy() for b in base],                   # identical to twin
    })
    board = leaderboard(entries([run]))
    assert [r.entry.name for r in board.rows] == ["best", "same", "twin", "weak"] or \
        [r.entry.name for r in board.rows] == ["best", "twin", "same", "weak"]
    marks = {r.entry.name: r.mark for r in board.rows}
    assert marks["best"] == "best"
    assert marks["twin"] == marks["same"] == marks["weak"] == ""  # all significantly behind the best
    assert all(p.difference.method.startswith("Wilcoxon") for p in board.pairs)
    assert len(board.pairs) == 6
    twins = board.pair("twin", "same")
    assert twins.difference.p == 1.0 and twins.p_adjusted == 1.0
    assert board.rows[0].rank == 1 and [r.rank for r in board.rows] == [1, 2, 3, 4]
    assert board.rows[0].low <= board.rows[0].accuracy.mean <= board.rows[0].high


def test_a_model_tied_with_the_best_is_marked(tmp_path):
    rng = np.random.default_rng(12)
    base = [rng.random(N) < 0.8 for _ in range(2)]
    flip = [b ^ (rng.random(N) < 0.002) for b in base]  # a handful of samples differ
    board = leaderboard(entries([_run(tmp_path, "r", {"a": base, "b": flip})]))
    assert {r.entry.name: r.mark for r in board.rows}[board.rows[1].entry.name] == "tied with best"
    assert board.rows[1].tied and board.rows[1].testable


def test_without_predictions_the_seeds_decide_and_three_seeds_cannot_separate(tmp_path):
    pairs = [make_pair(m, "mnist", s, accuracy=a) for m, accs in (("a", [0.99, 0.99, 0.99]), ("b", [0.90, 0.90, 0.91]))
             for s, a in enumerate(accs)]
    board = leaderboards([("r", make_results(pairs), None)])[0]
    row = board.rows[1]
    assert board.pairs[0].difference.method == "permutation test over seeds"
    assert row.mark == "tied with best (untestable)" and not row.testable


def test_the_same_model_in_two_runs_is_two_entries(tmp_path):
    one = ("one", make_results([make_pair("rnn-cpu", "mnist", 0, accuracy=0.9)]), None)
    two = ("two", make_results([make_pair("rnn-cpu", "mnist", 0, accuracy=0.8)]), None)
    assert [e.name for e in entries([one, two])] == ["rnn-cpu [one]", "rnn-cpu [two]"]


def test_across_datasets_needs_three_models_on_two_datasets():
    def run(accs):
        return ("r", make_results([make_pair(m, d, 0, accuracy=a) for (m, d), a in accs.items()]), None)

    two_models = run({("a", "mnist"): 0.9, ("b", "mnist"): 0.8, ("a", "cifar10"): 0.6, ("b", "cifar10"): 0.5})
    assert across_datasets(leaderboards([two_models])).test is None
    three = run({("a", "mnist"): 0.9, ("b", "mnist"): 0.8, ("c", "mnist"): 0.7,
                 ("a", "cifar10"): 0.6, ("b", "cifar10"): 0.5, ("c", "cifar10"): 0.55})
    result = across_datasets(leaderboards([three]))
    assert result.test.names == ["a", "b", "c"] and result.test.mean_ranks == [1.0, 2.5, 2.5]


def test_runs_of_different_data_are_refused_naming_them():
    one = ("jan", make_results([make_pair("a", "mnist", 0, fingerprint="sha256:" + "1" * 64)]))
    two = ("feb", make_results([make_pair("b", "mnist", 0, fingerprint="sha256:" + "2" * 64)]))
    with pytest.raises(ResultsError, match=r"mnist is not the same data.*jan.*feb"):
        check_same_data([one, two])
    check_same_data([one, ("mar", make_results([make_pair("c", "mnist", 0, fingerprint="sha256:" + "1" * 64)]))])


def test_two_identical_models_are_tied_and_a_model_better_on_every_sample_is_not(tmp_path):
    rng = np.random.default_rng(13)
    base = [rng.random(N) < 0.7 for _ in range(2)]
    board = leaderboard(entries([_run(tmp_path, "same", {"a": base, "b": [m.copy() for m in base]})]))
    assert [r.mark for r in board.rows] == ["best", "tied with best"]
    better = [m | ~m for m in base]  # right on every sample
    board = leaderboard(entries([_run(tmp_path, "better", {"worse": base, "perfect": better})]))
    assert [(r.entry.name, r.mark) for r in board.rows] == [("perfect", "best"), ("worse", "")]


def test_pareto_front_keeps_what_nothing_beats_on_both_accuracy_and_cost():
    from seqbench.reporting.comparison_plots import pareto

    # (cost, accuracy): b is beaten by a (cheaper and more accurate); d costs most but is best
    points = [(1.0, 60.0), (2.0, 55.0), (3.0, 62.0), (9.0, 65.0), (9.0, 64.0)]
    assert pareto(points) == [0, 2, 3]
    # throughput: higher is better
    assert pareto([(100.0, 60.0), (50.0, 65.0), (80.0, 59.0)], lower_cost=False) == [1, 0]
