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
    for st in (TOY, TOY2):  # BROKEN is registered by the test that wants it
        register_study(st)
    CALLS.clear()
    CRASH["after"] = None
    yield
    for st in (TOY, TOY2, BROKEN):
        unregister_study(st.name)
    CALLS.clear()
    CRASH["after"] = None
