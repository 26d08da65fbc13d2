"""Study registry; built-ins are imported lazily from ``weightscape.<name>.reproduce``."""

from __future__ import annotations

import importlib

from ..errors import ConfigError
from ._types import Study

__all__ = [
    "BUILTIN_STUDIES",
    "StudyNotImplementedError",
    "available_studies",
    "get_study",
    "known_studies",
    "register_study",
    "unregister_study",
]

#: The paper studies shipped with weightscape, in the order ``all`` runs them. Each registers its
#: :class:`Study` when ``weightscape.<name>.reproduce`` is imported.
BUILTIN_STUDIES = ("jamming", "landscape", "maxent")

_REGISTRY: dict[str, Study] = {}


class StudyNotImplementedError(ConfigError):
    """A built-in study whose ``weightscape.<name>.reproduce`` module does not exist yet."""


def register_study(study: Study, *, replace: bool = False) -> Study:
    """Add ``study`` to the registry (called at import time by ``weightscape.<name>.reproduce``).

    Registering the same (equal) study twice is a no-op; a different study under a taken name is a
    :class:`ConfigError` unless ``replace=True``.
    """
    if not isinstance(study, Study):
        raise ConfigError(f"register_study needs a Study, got {type(study).__name__}")
    old = _REGISTRY.get(study.name)
    if old is not None and old != study and not replace:
        raise ConfigError(
            f"a different study is already registered as {study.name!r}; pass replace=True"
        )
    _REGISTRY[study.name] = study
    return study


def unregister_study(name: str) -> None:
    """Remove ``name`` from the registry (for tests); unknown names are ignored."""
    _REGISTRY.pop(name, None)


def known_studies() -> tuple[str, ...]:
    """Every name ``reproduce`` accepts: the built-ins, then other registered studies."""
    extra = [n for n in _REGISTRY if n not in BUILTIN_STUDIES]
    return (*BUILTIN_STUDIES, *extra)


def _try_import(name: str) -> bool:
    """Import ``weightscape.<name>.reproduce``; False when that module does not exist."""
    modname = f"weightscape.{name}.reproduce"
    try:
        importlib.import_module(modname)
    except ModuleNotFoundError as err:
        # Only "this module (or its package) is missing" means not implemented; a missing
        # dependency inside an existing module is a real error and propagates.
        if err.name in (modname, f"weightscape.{name}"):
            return False
        raise
    return True


def get_study(name: str) -> Study:
    """The registered study ``name``, importing its built-in module on first use.

    Raises:
        ConfigError: ``name`` is not a known study.
        StudyNotImplementedError: ``name`` is a built-in study whose module does not exist yet.
    """
    if name in _REGISTRY:
        return _REGISTRY[name]
    if name not in BUILTIN_STUDIES:
        allowed = ["all", *known_studies()]
        raise ConfigError(f"study={name!r} is not allowed; choose one of {allowed}")
    if not _try_import(name):
        raise StudyNotImplementedError(f"study {name} is not implemented yet")
    if name not in _REGISTRY:
        raise ConfigError(
            f"weightscape.{name}.reproduce was imported but registered no study named {name!r}"
        )
    return _REGISTRY[name]


def available_studies() -> tuple[str, ...]:
    """The studies that can run now (built-ins whose module exists, and registered ones)."""
    out = []
    for name in known_studies():
        try:
            get_study(name)
        except StudyNotImplementedError:
            continue
        out.append(name)
    return tuple(out)
