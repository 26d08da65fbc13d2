"""Maximum-entropy (pairwise Ising) models of ±1 configurations and their inverse problem.

Convention: ``P(σ) ∝ exp(Σ_{i<j} J_ij σ_i σ_j + Σ_i h_i σ_i)``, ``σ ∈ {±1}^N``,
energy ``E = -(exponent)``; ``J`` symmetric ``[N, N]`` with zero diagonal.

- model: :class:`IsingModel` (energy, tilt, ``.npz`` save/load, text/``.npy`` import);
- moments: :func:`sample_moments` (m, C, connected C, third-order), bit packing of samples;
- exact: enumeration of all ``2^N`` states (log Z, probabilities, moments) for N ≤ ~20;
- Monte Carlo: :func:`metropolis_sample` (batched chains);
- BP: :func:`bp_solve` (dense damped BP on the complete graph); :func:`bethe_solve` (batched
  over many field vectors, with the Bethe free energy);
- entropy landscape: :func:`entropy_landscape` around references (:func:`sample_references`,
  :func:`read_references`), iso-energy variant, coexisting BP fixed points, TAP landscape, figures;
  :func:`mc_entropy_landscape`, the same sweep by Monte Carlo where BP does not converge;
- inverse methods, one class each with ``fit(data) -> (model, report)``: :class:`BoltzmannBP`,
  :class:`MonteCarloBoltzmann` (persistent Monte Carlo chains), :class:`PseudoLikelihood`,
  :class:`PseudoLikelihoodDecimation` (sparse couplings),
  :class:`MeanFieldInversion`, :class:`TAPInversion`, :class:`ExactBoltzmann`;
- weight samples: :func:`train_lrnet` (LR-net, binary-weight nets), :func:`draw_weight_samples`,
  :func:`layer_map` (LB/ITR/RB slices);
- the model as a model of networks: :func:`energy_accuracy` (Ising energy vs test accuracy),
  :func:`mc_accuracy` (Metropolis from trained weights, test accuracy along the chain);
- peers: :func:`coniii_fit` runs ConIII in the separate peers environment (cross-checks).
"""

from ._bethe import (  # landscape group
    BetheConfig,
    BetheResult,
    bethe_pair_moments,
    bethe_solve,
)
from ._bp import (
    BP_DEFAULT_DAMPING,
    BP_DEFAULT_MAX_ITER,
    BP_DEFAULT_TOL,
    BPConfig,
    BPResult,
    bp_solve,
)
from ._bp_learning import BoltzmannBP, BoltzmannBPConfig, best_iterate, bp_jacobian_radius
from ._decimation import DecimationConfig, PseudoLikelihoodDecimation
from ._exact import (
    MAX_EXACT_SPINS,
    all_states,
    exact_distribution,
    exact_log_partition,
    exact_moments,
)
from ._exact_learning import EXACT_LEARNING_MAX_SPINS, ExactBoltzmann, ExactBoltzmannConfig
from ._fit import FitReport, FitResult, InverseIsing, model_moments, moment_error
from ._frozen import (
    FrozenCentreConfig,
    FrozenCentreResult,
    frozen_centre_experiment,
    plot_frozen_centre,
    train_frozen_centre,
)
from ._generative import (
    EnergyAccuracy,
    MCAccuracyConfig,
    MCAccuracyTrace,
    energy_accuracy,
    mc_accuracy,
    walk_starts,
)
from ._landscape import (  # landscape group
    BPFixedPoints,
    HysteresisScan,
    IsoEnergyConfig,
    IsoEnergyResult,
    LandscapeConfig,
    LandscapeResult,
    LandscapeSummary,
    binary_entropy,
    bp_fixed_points,
    entropy_landscape,
    entropy_landscapes,
    iso_energy_landscape,
    refine_jump,
    scan_hysteresis,
)
from ._landscape_plots import (  # landscape group
    plot_d_of_x,
    plot_entropy_landscape,
    plot_tap_histogram,
)
from ._lrnet import (  # weight-samples group
    LRNetConfig,
    LRNetResult,
    binary_forward,
    load_lrnet,
    lrnet_forward,
    parse_arch,
    preactivation_moments,
    save_lrnet,
    train_lrnet,
)
from ._mc_landscape import (  # landscape group
    CONFIRM_FACTOR,
    HysteresisCheck,
    MCLandscapeConfig,
    MCLandscapeResult,
    confirm_hysteresis,
    mc_entropy_landscape,
    mc_entropy_landscapes,
)
from ._mc_learning import MonteCarloBoltzmann, MonteCarloBoltzmannConfig
from ._mean_field import MeanFieldConfig, MeanFieldInversion, TAPInversion
from ._metropolis import (
    MetropolisConfig,
    MetropolisState,
    MetropolisTrace,
    metropolis_sample,
    random_site_walk,
)
from ._model import IsingModel, read_matrix
from ._moments import (
    Moments,
    PackedSpins,
    pack_spins,
    sample_moments,
    third_order_connected,
    unpack_spins,
)
from ._peers import coniii_fit, peers_python
from ._pseudo import PseudoLikelihood, PseudoLikelihoodConfig
from ._references import (  # landscape group
    LAYER_SLICES,
    References,
    ReferenceSampling,
    parse_range,
    parse_slice,
    read_references,
    sample_references,
)
from ._relabel import (
    OrbitAverage,
    RelabelResult,
    hidden_symmetry_defect,
    permute_hidden_units,
    random_hidden_permutations,
    relabel_experiment,
    relabel_samples,
    symmetrised_data,
    symmetrised_moments,
    symmetrised_sample_moments,
    symmetrised_third_order,
)
from ._samples import (  # weight-samples group
    THRESHOLD_KINDS,
    SampleConfig,
    WeightSamples,
    draw_weight_samples,
    layer_map,
    load_weight_samples,
    network_accuracy,
    save_weight_samples,
)
from ._tap import (  # landscape group
    TAPConfig,
    TAPLandscape,
    tap_free_energy,
    tap_landscape,
    tap_solve,
)
from ._validate import (  # validation group
    ValidationResult,
    coupling_table,
    layers_in_slice,
    pearson,
    random_triplets,
    validate_model,
)

__all__ = [  # noqa: RUF022 (grouped by topic, not sorted)
    # model and files
    "IsingModel",
    "read_matrix",
    # moments and sample storage
    "Moments",
    "PackedSpins",
    "pack_spins",
    "unpack_spins",
    "sample_moments",
    "third_order_connected",
    # exact enumeration
    "MAX_EXACT_SPINS",
    "all_states",
    "exact_distribution",
    "exact_log_partition",
    "exact_moments",
    # Monte Carlo
    "MetropolisConfig",
    "MetropolisState",
    "MetropolisTrace",
    "metropolis_sample",
    "random_site_walk",
    # belief propagation
    "BP_DEFAULT_DAMPING",
    "BP_DEFAULT_MAX_ITER",
    "BP_DEFAULT_TOL",
    "BPConfig",
    "BPResult",
    "bp_solve",
    # inverse methods
    "InverseIsing",
    "FitReport",
    "FitResult",
    "moment_error",
    "model_moments",
    "BoltzmannBP",
    "BoltzmannBPConfig",
    "MonteCarloBoltzmann",
    "MonteCarloBoltzmannConfig",
    "best_iterate",
    "bp_jacobian_radius",
    "PseudoLikelihood",
    "PseudoLikelihoodDecimation",
    "DecimationConfig",
    "PseudoLikelihoodConfig",
    "MeanFieldConfig",
    "MeanFieldInversion",
    "TAPInversion",
    "ExactBoltzmann",
    "ExactBoltzmannConfig",
    # ---- landscape group (entropy landscape of weight space; _bethe, _landscape, _tap,
    # _references, _landscape_plots) ----
    # batched BP with the Bethe free energy
    "BetheConfig",
    "BetheResult",
    "bethe_pair_moments",
    "bethe_solve",
    # reference configurations
    "LAYER_SLICES",
    "References",
    "ReferenceSampling",
    "parse_range",
    "parse_slice",
    "read_references",
    "sample_references",
    # entropy landscape and variants
    "LandscapeConfig",
    "LandscapeResult",
    "LandscapeSummary",
    "binary_entropy",
    "entropy_landscape",
    "entropy_landscapes",
    "refine_jump",
    "MCLandscapeConfig",
    "MCLandscapeResult",
    "mc_entropy_landscape",
    "mc_entropy_landscapes",
    "HysteresisCheck",
    "confirm_hysteresis",
    "CONFIRM_FACTOR",
    "HysteresisScan",
    "scan_hysteresis",
    "IsoEnergyConfig",
    "IsoEnergyResult",
    "iso_energy_landscape",
    "BPFixedPoints",
    "bp_fixed_points",
    # TAP free-energy landscape
    "TAPConfig",
    "TAPLandscape",
    "tap_free_energy",
    "tap_landscape",
    "tap_solve",
    # figures
    "plot_entropy_landscape",
    "plot_d_of_x",
    "plot_tap_histogram",
    # ---- end landscape group ----
    # ---- weight-samples group (LR-net training of binary nets; _lrnet, _samples) ----
    "LRNetConfig",
    "LRNetResult",
    "parse_arch",
    "preactivation_moments",
    "lrnet_forward",
    "binary_forward",
    "train_lrnet",
    "save_lrnet",
    "load_lrnet",
    "THRESHOLD_KINDS",
    "SampleConfig",
    "WeightSamples",
    "draw_weight_samples",
    "layer_map",
    "save_weight_samples",
    "load_weight_samples",
    "network_accuracy",
    # ---- end weight-samples group ----
    # validation of fitted models and the per-layer coupling table (_validate)
    "ValidationResult",
    "validate_model",
    "coupling_table",
    "layers_in_slice",
    "pearson",
    "random_triplets",
    "EXACT_LEARNING_MAX_SPINS",
    # hidden-unit relabelling (_relabel)
    "OrbitAverage",
    "RelabelResult",
    "permute_hidden_units",
    "random_hidden_permutations",
    "relabel_samples",
    "relabel_experiment",
    "symmetrised_data",
    "symmetrised_moments",
    "symmetrised_third_order",
    "symmetrised_sample_moments",
    "hidden_symmetry_defect",
    # frozen-centre training (_frozen)
    "FrozenCentreConfig",
    "FrozenCentreResult",
    "train_frozen_centre",
    "frozen_centre_experiment",
    "plot_frozen_centre",
    # the model as a model of networks: energy vs accuracy, Monte Carlo from trained weights
    "EnergyAccuracy",
    "energy_accuracy",
    "MCAccuracyConfig",
    "MCAccuracyTrace",
    "mc_accuracy",
    "walk_starts",
    # peer cross-checks (ConIII in the separate peers environment)
    "coniii_fit",
    "peers_python",
]
