"""Study A (jamming): N* estimation, run classification, gap statistics, depth-0 anchors.

Pure analysis functions: numpy / pandas in, frozen dataclasses out. The training protocol and the
N* search that trains nets build on these.
"""

from ._capacity import (
    CapacityFit,
    DepthTest,
    depth_independence,
    fit_capacity,
    fit_capacity_by_depth,
)
from ._cover import (
    HardMargin,
    cover_log_probability,
    cover_probability,
    hard_margin,
    lp_max_margin,
    lp_separable,
)
from ._diagnose import (
    DeadUnitReport,
    PlateauRule,
    PlateauStatus,
    RunClass,
    classify_run,
    dead_unit_report,
    dead_unit_report_ensemble,
    is_decided,
    plateau_status,
)
from ._gaps import (
    GAP_RANGE,
    GapExponentFit,
    GapHistogram,
    fit_gamma,
    fit_gap_exponent,
    fit_theta,
    gap_bins,
    gap_histogram,
)
from ._nstar import (
    OUTCOMES,
    BudgetCheck,
    NStarResult,
    budget_check,
    fit_nstar,
    logistic_jammed_fraction,
)
from ._precision import PrecisionExample, count_unsatisfied, float32_gap_miscount_example

# fmt: off
__all__ = [  # noqa: RUF022 (grouped by topic, not sorted)
    # N* from per-run outcomes
    "OUTCOMES", "BudgetCheck", "NStarResult", "budget_check", "fit_nstar",
    "logistic_jammed_fraction",
    # classifying a run's ending (SAT / jammed / undecided / dead-unit trap), online stop rule
    "DeadUnitReport", "PlateauRule", "PlateauStatus", "RunClass", "classify_run",
    "dead_unit_report", "dead_unit_report_ensemble", "is_decided", "plateau_status",
    # gap histograms and exponents θ, γ
    "GAP_RANGE", "GapExponentFit", "GapHistogram", "fit_gamma", "fit_gap_exponent", "fit_theta",
    "gap_bins", "gap_histogram",
    # depth-0 anchor: Cover's capacity, exact separability
    "HardMargin", "cover_log_probability", "cover_probability", "hard_margin", "lp_max_margin",
    "lp_separable",
    # N*(P) = P / c and depth independence
    "CapacityFit", "DepthTest", "depth_independence", "fit_capacity", "fit_capacity_by_depth",
    # float32 vs float64 gap counts
    "PrecisionExample", "count_unsatisfied", "float32_gap_miscount_example",
]
# fmt: on
