"""weightscape: statistical mechanics of neural-network weight spaces and loss landscapes.

Subpackages (data flows left to right):
``data`` → ``nets`` → ``train`` → ``curvature`` / ``jamming`` / ``landscape`` / ``maxent`` →
``sweeps`` / ``store`` → ``plots``; ``cli`` sits on top.
"""

__version__ = "0.1.0"

from . import errors
from .config import Precision
from .errors import (
    ConfigError,
    DataNotFoundError,
    DatasetError,
    NumericalError,
    RunDirError,
    SweepError,
    WeightscapeError,
)

__all__ = [
    # errors
    "ConfigError",
    "DataNotFoundError",
    "DatasetError",
    "NumericalError",
    # precision
    "Precision",
    "RunDirError",
    "SweepError",
    "WeightscapeError",
    "__version__",
    "errors",
]
