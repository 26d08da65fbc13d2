import pytest

from weightscape.reproduce import _registry, register_study, unregister_study

from ._toy import BROKEN, CALLS, CRASH, TOY, TOY2


@pytest.fixture
def toys(monkeypatch):
    """Register the toy studies; the built-ins become one unimplemented study, ``ghost``.

    Replacing the built-ins keeps these tests independent of the real studies (which may or may
    not exist yet, and take minutes even at smoke scale).
    """
    monkeypatch.setattr(_registry, "BUILTIN_STUDIES", ("ghost",))
    # Real studies registered by earlier imports (e.g. the study test modules) are hidden too:
    # an empty registry for the duration of the test, restored afterwards by monkeypatch.
    monkeypatch.setattr(_registry, "_REGISTRY", {})
    for st in (TOY, TOY2):  # BROKEN is registered by the test that wants it
        register_study(st)
    CALLS.clear()
    CRASH["after"] = None
    yield
    for st in (TOY, TOY2, BROKEN):
        unregister_study(st.name)
    CALLS.clear()
    CRASH["after"] = None
