"""Compare two runs pair by pair, say how sure each difference is, and gate on thresholds.

Pairs are matched by model × dataset and aggregated over their ``ok`` seeds. The accuracy
difference is in percentage points (NEW − BASE); time is the ratio NEW / BASE of the seconds
per epoch (each seed's median, see :func:`seqbench.reporting.query.seconds_per_epoch`). Every difference
comes with a confidence interval and a p-value (:mod:`seqbench.reporting.stats`): a permutation test over
seeds and, for accuracy, a paired test on the test set's per-sample predictions (McNemar's
exact test, paired bootstrap interval), seed paired with seed of the same number, where both
runs stored predictions for the same data and the same test labels.

The gate (asv's rule): a pair fails a threshold only when its difference is past the threshold
AND significant (p ≤ alpha), by the paired prediction test where there is one, else by the
permutation test over seeds. When no test can reach alpha (one seed, or three against three,
and no stored predictions), significance is unknown and the threshold alone decides.

Every metric plugin's scalar results (:func:`seqbench.reporting.query.metric_values`) are compared too
(mean over seeds, NEW − BASE, permutation test over seeds) and can be gated on:
``--fail-on top2.top2_accuracy:-0.01`` (a change in the metric's own units) or ``...:-1%``
(relative to BASE's mean). Which way is worse is the metric's declaration
(``MetricSpec.higher_is_better``), looked up by the caller (:data:`Directions`).

Whatever the thresholds, a comparison with no model × dataset ``ok`` in both runs exits
:data:`EXIT_NOTHING_COMPARABLE`, and one where an ``ok`` seed of BASE is missing or not ``ok``
in NEW exits :data:`EXIT_MISSING` unless missing pairs are allowed.

The package's modules: :mod:`.model` (what is compared), :mod:`.tests` (the statistics),
:mod:`.gate` (thresholds and the verdict), :mod:`.runs` (matching two runs, :func:`compare_runs`)
and :mod:`.render` (table, verdict in words, JSON).
"""

from seqbench.reporting.compare.model import (
    DEFAULT_ALPHA,
    EXIT_MISSING,
    EXIT_NOTHING_COMPARABLE,
    EXIT_OK,
    EXIT_REGRESSION,
    FAILING_STATUSES,
    Comparison,
    Directions,
    Key,
    MetricComparison,
    Missing,
    PairComparison,
    Regression,
    Threshold,
    ThresholdError,
    parse_threshold,
)
from seqbench.reporting.compare.render import (
    P_FLOOR,
    compare_columns,
    comparison_json,
    comparison_table,
    p_text,
    verdict,
)
from seqbench.reporting.compare.runs import compare_runs

__all__ = [
    "DEFAULT_ALPHA",
    "EXIT_MISSING",
    "EXIT_NOTHING_COMPARABLE",
    "EXIT_OK",
    "EXIT_REGRESSION",
    "FAILING_STATUSES",
    "P_FLOOR",
    "Comparison",
    "Directions",
    "Key",
    "MetricComparison",
    "Missing",
    "PairComparison",
    "Regression",
    "Threshold",
    "ThresholdError",
    "compare_columns",
    "compare_runs",
    "comparison_json",
    "comparison_table",
    "p_text",
    "parse_threshold",
    "verdict",
]
