"""Study A (jamming): protocol presets, the batched N* search, phase diagram, gap statistics.

Analysis functions (numpy / pandas in, frozen dataclasses out): N* fits, run classification, gap
histograms and exponents, depth-0 anchors. On top of them, the training side: the protocol presets
(:data:`PROTOCOLS`), the ``"jamming.train"`` sweep task (training with the plateau rule as an
online stop rule), the N* search and scans, and the phase diagram.
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
from ._depth0 import CoverCheck, cover_check, depth0_protocol
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
from ._figures import (
    cover_figure,
    fixed_n_figure,
    gaps_figure,
    generalization_figure,
    ndelta_figure,
    phase_figure,
    spectra_figure,
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
from ._kinks import KinkReport, kink_report
from ._nstar import (
    OUTCOMES,
    BudgetCheck,
    NStarResult,
    budget_check,
    fit_nstar,
    logistic_jammed_fraction,
)
from ._phase import (
    FixedNDiagram,
    PhaseDiagram,
    fixed_n_diagram,
    fixed_n_sizes,
    phase_diagram,
    phase_table,
)
from ._polish import JammedPolish, polish_jammed
from ._precision import PrecisionExample, count_unsatisfied, float32_gap_miscount_example
from ._protocol import PROTOCOLS, Protocol, get_protocol, n_weights, width_for_n
from ._runner import (
    JAMMING_TASK,
    RunRecord,
    classify_record,
    plateau_hook,
    records_frame,
    register_jamming_task,
    run_records,
    train_members,
)
from ._search import (
    NStarSearch,
    Problem,
    SearchConfig,
    descending_search,
    log_widths,
    scan_p,
    scan_widths,
    search_nstar,
)

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
    # first-order stationarity on relu kinks (are jammed end points minima?)
    "KinkReport", "kink_report",
    # kink-aware minimiser of the hinge loss (jammed end points to Clarke stationarity)
    "JammedPolish", "polish_jammed",
    # depth-0 anchor: Cover's capacity, exact separability
    "HardMargin", "cover_log_probability", "cover_probability", "hard_margin", "lp_max_margin",
    "lp_separable", "CoverCheck", "cover_check", "depth0_protocol",
    # N*(P) = P / c and depth independence
    "CapacityFit", "DepthTest", "depth_independence", "fit_capacity", "fit_capacity_by_depth",
    # float32 vs float64 gap counts
    "PrecisionExample", "count_unsatisfied", "float32_gap_miscount_example",
    # protocol presets and sizes
    "PROTOCOLS", "Protocol", "get_protocol", "n_weights", "width_for_n",
    # training members (the "jamming.train" task, plateau stop hook, run records)
    "JAMMING_TASK", "RunRecord", "classify_record", "plateau_hook", "records_frame",
    "register_jamming_task", "run_records", "train_members",
    # locating N*
    "NStarSearch", "Problem", "SearchConfig", "descending_search", "log_widths", "scan_p",
    "scan_widths", "search_nstar",
    # phase diagram, transition statistics, spectra, generalization
    "FixedNDiagram", "PhaseDiagram", "fixed_n_diagram", "fixed_n_sizes", "phase_diagram",
    "phase_table",
    "Transition", "transition_stats", "Spectra",
    "spectra_near_nstar", "Generalization", "generalization_curve", "available_real_dataset",
    "cusp_height",
    # figures
    "cover_figure", "fixed_n_figure", "gaps_figure", "generalization_figure", "ndelta_figure",
    "phase_figure",
    "spectra_figure",
]
# fmt: on

from ._transition import (
    Generalization,
    Spectra,
    Transition,
    available_real_dataset,
    cusp_height,
    generalization_curve,
    spectra_near_nstar,
    transition_stats,
)

register_jamming_task()
