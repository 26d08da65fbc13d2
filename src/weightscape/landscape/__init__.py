"""Study B, spin-glass half: the spherical H-spin model of deep networks and its landscape.

* Model (:mod:`._model`): ``L(w) = Lambda^{-(H-1)/2} sum X_{i1..iH} w_i1...w_iH`` on
  ``|w|^2 = Lambda`` with X i.i.d. over ordered tuples; dense-tensor and monomial-coefficient
  storages, batched energy / gradient / Hessian over points and disorder samples (float64).
* Analytic curves (:mod:`._analytic`): complex eigenvector classes, exact finite-Lambda Kac–Rice
  means (total and by index), ABC complexity, ``E_0``, ``E_inf``, Hessian semicircle and log-volume.
* Stationary points (:mod:`._stationary`): exhaustive random-start Newton enumeration on small
  instances, classes ``±w`` with index, energy, spectrum and completeness estimates.
* Minima (:mod:`._minima`): batched projected GD with Newton polishing; distinct minima, overlaps,
  log-volume slope. The analysis helpers (:mod:`._analysis`) take plain ``[n, P]`` point arrays and
  are meant for real networks too.

Study B, real-network half and the study:

* Symmetries (:mod:`._symmetry`): canonical forms of relu/tanh nets (rescaling, sign flips,
  permutations), random symmetric copies, rescaling-orbit tangents.
* Real nets (:mod:`._realnets`): parameter-budget widths, ``n_inits`` full-batch float64 runs per
  setting (L-BFGS + damped Newton to a gradient norm), Hessian spectra (full and with the
  rescaling modes removed), distinct minima, distances, overlaps, log-width slope; the
  ``landscape.realnet`` sweep task.
* Minima of relu nets on kinks (:mod:`._kinks`): the stationarity measure (distance from 0 to
  the subdifferential over the pinned pre-activations) and the active-set SQP minimiser.
* Study tables and verdict rule (:mod:`._study`), figures (:mod:`._figures`), and
  ``weightscape reproduce landscape`` (:mod:`.reproduce`, imported on demand).
"""

from ._analysis import (
    Clusters,
    LineFit,
    capture_recapture,
    distinct_points,
    fit_line,
    pairwise_overlaps,
    random_overlaps,
)
from ._analytic import (
    IndexCounts,
    analytic_table,
    complexity,
    complexity_by_index,
    e_0,
    e_inf,
    goe_abs_det_mean,
    goe_density,
    hessian_semicircle_density,
    hessian_semicircle_radius,
    kac_rice_by_index,
    kac_rice_log_mean,
    log_complex_classes,
    log_volume_curve,
    log_volume_slope,
    random_overlap_pdf,
)
from ._figures import (
    net_distances_figure,
    net_logwidth_figure,
    net_minima_figure,
    spin_counts_figure,
    spin_logvolume_figure,
    spin_overlaps_figure,
)
from ._kinks import KinkPoint, KinkPolish, kink_point, kink_stationarity, polish_on_kinks
from ._minima import (
    MINIMA_CLUSTER_TOL,
    DescentConfig,
    MinimaSet,
    MinimaSummary,
    default_step,
    descend,
    summarize_minima,
    symmetric_flattening,
)
from ._model import DenseSpinGlass, ParameterBudget, SpinGlass, SpinGlassBase, lam_for_budget
from ._monomials import (
    DerivativeTable,
    derivative_table,
    multinomial_counts,
    multisets,
    n_monomials,
)
from ._realnets import (
    REALNET_TASK,
    RealNetConfig,
    RealNetMinima,
    RealNetSummary,
    clustering_index,
    load_realnet,
    pairwise_rms_distances,
    register_realnet_task,
    run_realnet,
    summarize_realnet,
    widths_for_budget,
)
from ._sphere import (
    log_volume,
    project_to_sphere,
    random_sphere_points,
    riemannian_gradient,
    riemannian_hessian,
    tangent_basis,
    tangent_hessian,
)
from ._stationary import (
    EnumerationConfig,
    StationaryClasses,
    canonical_sign,
    enumerate_stationary,
    newton_solve,
    newton_step,
)
from ._study import Trend, depth_trend, realnet_sweep, spin_counts, spin_minima
from ._symmetry import (
    SYMMETRIC_ACTIVATIONS,
    canonicalize,
    random_symmetry,
    rescaling_directions,
    symmetry_kind,
)

__all__ = [  # noqa: RUF022 - grouped by topic, not sorted
    # model
    "SpinGlassBase",
    "SpinGlass",
    "DenseSpinGlass",
    "ParameterBudget",
    "lam_for_budget",
    "multisets",
    "multinomial_counts",
    "n_monomials",
    "DerivativeTable",
    "derivative_table",
    # sphere geometry
    "project_to_sphere",
    "random_sphere_points",
    "riemannian_gradient",
    "riemannian_hessian",
    "tangent_basis",
    "tangent_hessian",
    "log_volume",
    # analytic curves
    "log_complex_classes",
    "goe_density",
    "goe_abs_det_mean",
    "kac_rice_log_mean",
    "kac_rice_by_index",
    "IndexCounts",
    "complexity",
    "complexity_by_index",
    "e_0",
    "e_inf",
    "hessian_semicircle_radius",
    "hessian_semicircle_density",
    "log_volume_curve",
    "log_volume_slope",
    "random_overlap_pdf",
    "analytic_table",
    # stationary points
    "EnumerationConfig",
    "StationaryClasses",
    "enumerate_stationary",
    "newton_step",
    "newton_solve",
    "canonical_sign",
    # minima
    "DescentConfig",
    "MinimaSet",
    "MinimaSummary",
    "default_step",
    "descend",
    "summarize_minima",
    "MINIMA_CLUSTER_TOL",
    "symmetric_flattening",
    # analysis (reusable on real networks)
    "Clusters",
    "LineFit",
    "distinct_points",
    "pairwise_overlaps",
    "random_overlaps",
    "fit_line",
    "capture_recapture",
    # symmetries of nets
    "SYMMETRIC_ACTIVATIONS",
    "symmetry_kind",
    "canonicalize",
    "random_symmetry",
    "rescaling_directions",
    # real networks at a fixed budget
    "REALNET_TASK",
    "widths_for_budget",
    "RealNetConfig",
    "RealNetMinima",
    "RealNetSummary",
    "run_realnet",
    "summarize_realnet",
    "load_realnet",
    "pairwise_rms_distances",
    "clustering_index",
    "register_realnet_task",
    # relu minima on kinks
    "KinkPoint",
    "KinkPolish",
    "kink_point",
    "kink_stationarity",
    "polish_on_kinks",
    # study tables and verdict rule
    "spin_counts",
    "spin_minima",
    "realnet_sweep",
    "Trend",
    "depth_trend",
    # figures
    "spin_counts_figure",
    "spin_overlaps_figure",
    "spin_logvolume_figure",
    "net_minima_figure",
    "net_distances_figure",
    "net_logwidth_figure",
]

register_realnet_task()
