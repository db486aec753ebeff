"""Which model wins on each dataset, by how much, and how the models rank over datasets.

A leaderboard ranks a dataset's models by mean test accuracy over their ``ok`` seeds, tests
every pair of them (:mod:`seqbench.reporting.significance`: on their stored test predictions
of the same samples and seeds where both have them, else on the per-seed accuracies), adjusts
the family of pairs with Holm, and marks the best model and every model whose difference from
it is not significant at ``alpha``. Across datasets (at least 3 models that ran on each of at
least 2 datasets) the models' mean ranks, the Friedman test and the Nemenyi critical difference.

A model that appears on the same dataset in several runs is one entry per run, named
``model [run]`` (as in the plots).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import combinations
from pathlib import Path
from typing import Any

from seqbench.fileio import ResultsError
from seqbench.reporting.query import Stat, ok_pairs, pair_accuracy, pairs_of, stat
from seqbench.reporting.significance import ALPHA, Difference, RankTest, holm, prediction_test, rank_test, seed_test
from seqbench.results import read_predictions
from seqbench.schema.types import PairRecord, RunResults

#: (label, results, run directory or None): a run as reports see it.
Run = tuple[str, RunResults, "Path | None"]

MIN_RANK_MODELS, MIN_RANK_DATASETS = 3, 2
CORRECTION = "Holm"


@dataclass
class Entry:
    """One model's ok seeds on one dataset, from one run."""

    name: str
    model: str
    dataset: str
    run: str
    pairs: list[PairRecord]
    run_dir: Path | None = None

    @property
    def accuracies(self) -> list[float]:
        """The seeds' test accuracies (fractions): its pairs are ok, so each has one."""
        return [a for a in map(pair_accuracy, self.pairs) if a is not None]

    def accuracy(self, scale: float = 1.0) -> Stat:
        """The mean and spread of :attr:`accuracies` times ``scale``."""
        s = stat(self.accuracies, scale=scale)
        assert s is not None, "an entry has at least one ok pair"
        return s

    def correct(self) -> dict[int, tuple[Any, Any]]:
        """Per seed with stored predictions: (labels, right-or-wrong booleans)."""
        if self.run_dir is None:
            return {}
        found = {}
        for pair in self.pairs:
            try:
                arr = read_predictions(self.run_dir, pair)
            except ResultsError:
                arr = None
            if arr is not None:
                found[pair["seed"]] = (arr[0], arr[0] == arr[1])
        return found


@dataclass(frozen=True)
class PairResult:
    """``a`` against ``b`` (difference a − b, in accuracy fraction) with its Holm-adjusted p-value."""

    a: str
    b: str
    difference: Difference
    p_adjusted: float


@dataclass(frozen=True)
class Row:
    """A leaderboard line: rank, mean and 95 % interval of test accuracy (%) over n seeds, and marks.

    ``tied``: not significantly different from the best (None for the best itself);
    ``testable``: whether the test against the best could reach ``alpha`` at all.
    """

    rank: int
    entry: Entry
    accuracy: Stat
    low: float
    high: float
    best: bool
    tied: bool | None
    testable: bool

    @property
    def mark(self) -> str:
        if self.best:
            return "best"
        if self.tied:
            return "tied with best" if self.testable else "tied with best (untestable)"
        return ""


@dataclass
class Leaderboard:
    """The ranked models of one dataset and every pair of them."""

    dataset: str
    rows: list[Row]
    pairs: list[PairResult] = field(default_factory=list)
    alpha: float = ALPHA
    provenance: str | None = None

    @property
    def title(self) -> str:
        """The dataset's name, with the label of its data copy where it declares one."""
        return f"{self.dataset} ({self.provenance})" if self.provenance else self.dataset

    def methods(self) -> list[str]:
        return sorted({p.difference.method for p in self.pairs})

    def pair(self, a: str, b: str) -> PairResult:
        """The test of ``a`` against ``b`` (A − B); a KeyError for a pair not on this board."""
        for p in self.pairs:
            if (p.a, p.b) == (a, b):
                return p
            if (p.b, p.a) == (a, b):
                d = p.difference
                flipped = Difference(-d.diff, -d.high, -d.low, d.p, d.p_min, d.method, d.over)
                return PairResult(a, b, flipped, p.p_adjusted)
        raise KeyError(f"{a} vs {b} is not a pair of the {self.dataset} leaderboard")


def entry_names(runs: Sequence[tuple[str, RunResults]]) -> dict[tuple[str, str, str], str]:
    """The shown name of each (run label, model, dataset): the model, or ``model [run]`` where
    the model is on that dataset in more than one run."""
    seen: dict[tuple[str, str], set[str]] = {}
    for label, results in runs:
        for pair in pairs_of(results):
            seen.setdefault((pair["model"], pair["dataset"]), set()).add(label)
    return {(label, model, dataset): model + (f" [{label}]" if len(labels) > 1 else "")
            for (model, dataset), labels in seen.items() for label in labels}


def entries(runs: Sequence[Run]) -> list[Entry]:
    """Every model × dataset × run with at least one ok seed, in order of appearance."""
    names = entry_names([(label, results) for label, results, _ in runs])
    found: dict[tuple[str, str, str], Entry] = {}
    for label, results, run_dir in runs:
        for pair in ok_pairs(pairs_of(results)):
            key = (label, pair["model"], pair["dataset"])
            if key not in found:
                found[key] = Entry(names[key], pair["model"], pair["dataset"], label, [], run_dir)
            found[key].pairs.append(pair)
    return list(found.values())


def compare(a: Entry, b: Entry, alpha: float = ALPHA, cache: dict[str, Any] | None = None) -> Difference:
    """a − b: on their predictions of the same samples for the seeds both stored, else on seeds."""
    import numpy as np

    cache = {} if cache is None else cache
    ca = cache.setdefault(a.name, a.correct())
    cb = cache.setdefault(b.name, b.correct())
    seeds = [s for s in ca if s in cb and ca[s][0].shape == cb[s][0].shape and np.array_equal(ca[s][0], cb[s][0])]
    if seeds:
        return prediction_test(np.stack([ca[s][1] for s in seeds]), np.stack([cb[s][1] for s in seeds]), alpha)
    return seed_test(a.accuracies, b.accuracies, alpha)


def leaderboard(dataset_entries: Sequence[Entry], alpha: float = ALPHA) -> Leaderboard:
    """Rank one dataset's entries, test every pair (Holm over the family) and mark ties with the best."""
    from seqbench.reporting.plots import interval

    ranked = sorted(dataset_entries, key=lambda e: -e.accuracy().mean)
    cache: dict[str, Any] = {}
    tests = [(a, b, compare(a, b, alpha, cache)) for a, b in combinations(ranked, 2)]
    adjusted = holm([d.p for _, _, d in tests])
    pairs = [PairResult(a.name, b.name, d, p) for (a, b, d), p in zip(tests, adjusted, strict=True)]
    board = Leaderboard(ranked[0].dataset if ranked else "", [], pairs, alpha, _provenance(ranked))
    for rank, entry in enumerate(ranked, 1):
        accuracy = entry.accuracy(scale=100.0)
        low, high = interval(accuracy)
        vs_best = board.pair(ranked[0].name, entry.name) if rank > 1 else None
        tied = None if vs_best is None else vs_best.p_adjusted > alpha
        testable = vs_best is None or vs_best.difference.can_reject(alpha)
        board.rows.append(Row(rank, entry, accuracy, max(low, 0.0), min(high, 100.0), rank == 1, tied, testable))
    return board


def _provenance(found: Sequence[Entry]) -> str | None:
    from seqbench.reporting.disclosure import provenance_label

    for entry in found:
        info = entry.pairs[0].get("dataset_info") or {}
        label = provenance_label(entry.dataset, info.get("fingerprint"), info.get("provenance"))
        if label:
            return label
    return None


def leaderboards(runs: Sequence[Run], alpha: float = ALPHA) -> list[Leaderboard]:
    """One leaderboard per dataset of the runs, in order of appearance."""
    found = entries(runs)
    datasets = list(dict.fromkeys(e.dataset for e in found))
    return [leaderboard([e for e in found if e.dataset == d], alpha) for d in datasets]


@dataclass(frozen=True)
class AcrossDatasets:
    """The rank test over datasets, or why there is none."""

    test: RankTest | None
    datasets: list[str]
    reason: str = ""


def across_datasets(boards: Sequence[Leaderboard], alpha: float = ALPHA) -> AcrossDatasets:
    """Mean ranks, Friedman and Nemenyi over the datasets, for the models that ran on every one of them."""
    import numpy as np

    datasets = [b.dataset for b in boards]
    means = [{row.entry.name: row.accuracy.mean for row in b.rows} for b in boards]
    common = [name for name in (means[0] if means else {}) if all(name in m for m in means)]
    if len(boards) < MIN_RANK_DATASETS or len(common) < MIN_RANK_MODELS:
        return AcrossDatasets(
            None,
            datasets,
            f"a ranking over datasets needs at least {MIN_RANK_MODELS} models that ran"
            f" on each of at least {MIN_RANK_DATASETS} datasets; here {len(common)}"
            f" model(s) on {len(boards)} dataset(s)",
        )
    scores = np.array([[m[name] for name in common] for m in means])
    return AcrossDatasets(rank_test(scores, common, alpha), datasets)


def caveat(test: RankTest) -> str:
    """What the rank test can and cannot conclude with this many datasets."""
    k, n = len(test.names), test.n_datasets
    widest = k - 1.0  # the largest possible difference of mean ranks
    parts = [f"{n} datasets, {k} models: each dataset is one observation, seeds and samples do not add any."]
    if test.cd >= widest:
        parts.append(f"The critical difference ({test.cd:.2f}) exceeds the largest possible difference of mean ranks"
                     f" ({widest:.0f}): with this few datasets no pair of models can be found different, whatever"
                     " the results; the ranks describe these datasets only.")
    if n < 10:
        parts.append("Demšar (2006) uses such tests with many datasets (his example has 14); with fewer than about 10"
                     " the Friedman test has little power and its χ² approximation is rough. Read the per-dataset"
                     " leaderboards for the evidence.")
    return " ".join(parts)


def check_same_data(runs: Sequence[tuple[str, RunResults]]) -> None:
    """Refuse runs whose pairs on one dataset name used different data (dataset fingerprints)."""
    by_dataset: dict[str, dict[str, list[str]]] = {}
    for label, results in runs:
        for pair in pairs_of(results):
            fp = (pair.get("dataset_info") or {}).get("fingerprint")
            if isinstance(fp, str) and fp:
                labels = by_dataset.setdefault(pair["dataset"], {}).setdefault(fp, [])
                if label not in labels:
                    labels.append(label)
    for dataset, fingerprints in by_dataset.items():
        if len(fingerprints) > 1:
            shown = "; ".join(f"{fp[:19]}…: {', '.join(labels)}" for fp, labels in fingerprints.items())
            raise ResultsError(f"{dataset} is not the same data in these runs ({shown}); "
                               "a leaderboard compares models on the same data only")

