"""Named exceptions with fixing hints.

Every error a user can cause derives from :class:`WeightscapeError`. The CLI prints such an error as
one line (``error: <message>``) and exits with code 2; library users catch the specific class.
Messages name the bad value and what is allowed.
"""

from __future__ import annotations

import zipfile

__all__ = [
    "NPZ_READ_ERRORS",
    "ConfigError",
    "DataNotFoundError",
    "DatasetError",
    "NumericalError",
    "RunDirError",
    "SweepError",
    "WeightscapeError",
]


class WeightscapeError(Exception):
    """Base class of all user-facing errors; ``str(err)`` is a one-line message."""

    def __init__(self, message: str, hint: str | None = None):
        self.message = message
        self.hint = hint
        super().__init__(message if hint is None else f"{message} ({hint})")


class ConfigError(WeightscapeError, ValueError):
    """A configuration value is invalid (wrong type, out of range, unknown key)."""


class DatasetError(WeightscapeError, ValueError):
    """A dataset name, option or file content is invalid."""


class DataNotFoundError(DatasetError, FileNotFoundError):
    """A dataset's files are not where they were looked for; the hint says how to get them."""


class RunDirError(WeightscapeError, OSError):
    """A run or sweep directory is missing, incomplete, or would be overwritten."""


class SweepError(WeightscapeError, ValueError):
    """A sweep specification is invalid."""


class NumericalError(WeightscapeError, ArithmeticError):
    """A numerical routine failed in a way the caller can fix (e.g. non-finite input)."""


def check_choice(name: str, value, allowed) -> None:
    """Raise :class:`ConfigError` unless ``value`` is one of ``allowed``."""
    allowed = list(allowed)
    if value not in allowed:
        raise ConfigError(f"{name}={value!r} is not allowed; choose one of {allowed}")


def check_seed(name: str, value) -> None:
    """Raise :class:`ConfigError` unless ``value`` is an integer >= 0 (a bool is not; NumPy's
    generators refuse negative seeds, so every config asks the same)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigError(f"{name}={value!r} must be an integer >= 0")


def check_positive(
    name: str, value, *, allow_zero: bool = False, integer: bool = False, finite: bool = False
) -> None:
    """Raise :class:`ConfigError` unless ``value`` is a positive (or non-negative) number (NaN is
    neither; ``inf`` passes unless ``finite``)."""
    ok_type = isinstance(value, int) if integer else isinstance(value, int | float)
    if isinstance(value, bool) or not ok_type:
        kind = "an integer" if integer else "a number"
        raise ConfigError(f"{name}={value!r} must be {kind}")
    if value != value or value < 0 or (value == 0 and not allow_zero):  # NaN fails too
        bound = ">= 0" if allow_zero else "> 0"
        raise ConfigError(f"{name}={value!r} must be {bound}")
    if finite and value == float("inf"):
        raise ConfigError(f"{name}={value!r} must be finite")


#: What reading a damaged or foreign ``.npz``/``.npy`` file raises besides our own errors: an
#: empty file (EOFError), a truncated or non-zip one (BadZipFile), a missing array (KeyError),
#: a bad header or dtype (ValueError), and I/O (OSError). Loaders turn these into a one-line
#: DatasetError naming the file.
NPZ_READ_ERRORS = (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile)
