"""Batched ensembles of fully connected nets (``[M, ...]`` stacked tensors, zero-padded masks)."""

from ._ensemble import Ensemble, ScaledActivation
from ._init import available_inits, block_orthogonal_rows, register_init
from ._spec import ACTIVATIONS, INITS, MLPSpec
from .functional import activate, activation_derivative, mlp_forward, split_params

__all__ = [
    "ACTIVATIONS",
    "INITS",
    # ensembles
    "Ensemble",
    # architecture
    "MLPSpec",
    "ScaledActivation",
    # functional single-net forward
    "activate",
    "activation_derivative",
    # initialisation
    "available_inits",
    "block_orthogonal_rows",
    "mlp_forward",
    "register_init",
    "split_params",
]
