"""The statistics of one model × dataset in both runs: accuracy, time and metric differences
with their permutation tests over seeds, and the paired test on stored predictions."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from seqbench.reporting.compare.model import FAILING_STATUSES, Key, MetricComparison, PairComparison
from seqbench.reporting.query import (
    accuracy_stat,
    dataset_info_of,
    group_status,
    mean_std,
    metric_stat,
    metric_values,
    ok_pairs,
    pair_accuracy,
    pair_name,
    pair_reason,
    seconds_per_epoch,
    time_stat,
)
from seqbench.schema.types import PairRecord

if TYPE_CHECKING:  # seqbench.reporting.stats imports NumPy: only where a comparison is made
    from seqbench.reporting.stats import Estimate


def _accuracy_test(base: list[PairRecord], new: list[PairRecord], alpha: float) -> Estimate | None:
    from seqbench.reporting.stats import permutation_test

    # pair_accuracy raises for an ok pair without an accuracy: none is left out here
    b, n = ([100 * a for p in ok_pairs(side) if (a := pair_accuracy(p)) is not None] for side in (base, new))
    return permutation_test(b, n, alpha=alpha)


def _time_test(base: list[PairRecord], new: list[PairRecord], alpha: float) -> Estimate | None:
    """The ratio NEW / BASE of seconds per epoch (means over seeds); its interval is the
    permutation interval of the difference in seconds, divided by BASE's mean."""
    from seqbench.reporting.stats import permutation_test

    b, n = ([s for s in map(seconds_per_epoch, ok_pairs(side)) if s is not None] for side in (base, new))
    test = permutation_test(b, n, alpha=alpha)
    base_mean = mean_std(b)[0] if b else 0.0
    return test.affine(1 / base_mean, 1.0) if test is not None and base_mean > 0 else None


def _metric_comparison(name: str, base: list[PairRecord], new: list[PairRecord], alpha: float) -> MetricComparison:
    from seqbench.reporting.stats import permutation_test

    values = [[v for p in ok_pairs(side) if (v := metric_values(p, builtins=True).get(name)) is not None]
              for side in (base, new)]
    mc = MetricComparison(metric_stat(base, name, builtins=True), metric_stat(new, name, builtins=True))
    mc.test = permutation_test(values[0], values[1], alpha=alpha) if all(values) else None
    return mc


def _correct(run_dir: Path, pair: PairRecord, warnings: list[str]) -> tuple[Any, Any] | None:
    """A pair's stored test labels and whether each prediction is right; None when it stored
    none, or ones that disagree with its recorded accuracy (with a warning)."""
    from seqbench.results import read_predictions

    rows = read_predictions(run_dir, pair)
    if rows is None:
        return None
    right = rows[1] == rows[0]
    accuracy = pair_accuracy(pair)
    assert accuracy is not None  # an ok pair: pair_accuracy raised otherwise
    if abs(float(right.mean()) - accuracy) > 1e-9:
        warnings.append(f"{pair_name(pair)}: the stored predictions in {run_dir} do not give the recorded"
                        " accuracy: no paired test")
        return None
    return rows[0], right


def _paired_test(dirs: tuple[Path, Path], base: list[PairRecord], new: list[PairRecord], alpha: float,
                 warnings: list[str]) -> Estimate | None:
    """The paired prediction test over the seeds ok in both runs that stored predictions of
    the same data (fingerprint) and the same test labels; None when there are none."""
    import numpy as np

    from seqbench.reporting.stats import paired_accuracy_test

    new_by_seed = {p["seed"]: p for p in ok_pairs(new)}
    base_rows, new_rows = [], []
    for bp in ok_pairs(base):
        np_ = new_by_seed.get(bp["seed"])
        fingerprint = dataset_info_of(bp).get("fingerprint")
        if np_ is None or fingerprint is None or fingerprint != dataset_info_of(np_).get("fingerprint"):
            continue
        b, n = _correct(dirs[0], bp, warnings), _correct(dirs[1], np_, warnings)
        if b is None or n is None:
            continue
        if b[0].shape != n[0].shape or not np.array_equal(b[0], n[0]):
            warnings.append(f"{pair_name(bp)}: the test labels differ between BASE and NEW: no paired test")
            continue
        base_rows.append(b[1])
        new_rows.append(n[1])
    if not base_rows:
        return None
    return paired_accuracy_test(np.array(base_rows), np.array(new_rows), alpha).affine(100.0)


def pair_comparison(key: Key, base: list[PairRecord], new: list[PairRecord], alpha: float,
                     dirs: tuple[Path, Path] | None, warnings: list[str], metrics: list[str]) -> PairComparison:
    """Aggregate one model × dataset's seeds on both sides, with its tests when both have ok seeds."""
    failing = [p for p in new if p.get("status") in FAILING_STATUSES]
    pc = PairComparison(
        model=key[0], dataset=key[1],
        base_status=group_status(base), new_status=group_status(new),
        base_accuracy=accuracy_stat(base), new_accuracy=accuracy_stat(new),
        base_time=time_stat(base), new_time=time_stat(new),
        new_reason=pair_reason(failing[0]) if failing else None,
    )
    if pc.comparable:
        pc.accuracy = _accuracy_test(base, new, alpha)
        pc.time = _time_test(base, new, alpha)
        pc.paired = _paired_test(dirs, base, new, alpha, warnings) if dirs else None
    pc.metrics = {name: _metric_comparison(name, base, new, alpha) for name in metrics}
    return pc
