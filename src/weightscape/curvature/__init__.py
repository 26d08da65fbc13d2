"""Curvature of the loss: dense float64 Hessians (GGN/residual split), matrix-free operators,
Lanczos and stochastic Lanczos quadrature, spectrum summaries and N_eff."""

from ._dense import (
    METHODS,
    HessianSplit,
    dense_hessian,
    hessian_split,
    hinge_hessian_split,
    per_sample_jacobian,
)
from ._lanczos import (
    ExtremeEigenvalues,
    LanczosResult,
    SpectralDensity,
    extreme_eigenvalues,
    lanczos,
    slq_density,
)
from ._neff import NEffResult, n_eff
from ._operators import DenseOperator, GGNOperator, HessianOperator, ResidualOperator
from ._problem import DEFAULT_MEMORY_BUDGET, flatten_params, unflatten_params
from ._run import HESSIAN_JSON, HESSIAN_NPZ, RunInputs, load_run_inputs, run_hessian
from ._spectrum import DEFAULT_RTOL, SpectrumCounts, log_volume, spectrum_counts

__all__ = [  # noqa: RUF022 (grouped by topic, not alphabetically)
    # dense Hessians
    "METHODS",
    "HessianSplit",
    "dense_hessian",
    "hessian_split",
    "hinge_hessian_split",
    "per_sample_jacobian",
    # matrix-free operators
    "DenseOperator",
    "GGNOperator",
    "HessianOperator",
    "ResidualOperator",
    # Lanczos and SLQ
    "ExtremeEigenvalues",
    "LanczosResult",
    "SpectralDensity",
    "extreme_eigenvalues",
    "lanczos",
    "slq_density",
    # spectrum summaries
    "DEFAULT_RTOL",
    "SpectrumCounts",
    "log_volume",
    "spectrum_counts",
    # N_eff
    "NEffResult",
    "n_eff",
    # run directories
    "HESSIAN_JSON",
    "HESSIAN_NPZ",
    "RunInputs",
    "load_run_inputs",
    "run_hessian",
    # parameters and budgets
    "DEFAULT_MEMORY_BUDGET",
    "flatten_params",
    "unflatten_params",
]
