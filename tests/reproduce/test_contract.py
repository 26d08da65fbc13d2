"""The contract types validate their fields (one-line ConfigError), and the registry imports a
study's ``weightscape.<name>.reproduce`` module lazily."""

import re
import sys
import textwrap
from pathlib import Path

import pytest
from matplotlib.figure import Figure

import weightscape
from weightscape.errors import ConfigError
from weightscape.reproduce import (
    Claim,
    Plan,
    Study,
    StudyContext,
    StudyNotImplementedError,
    StudyOutcome,
    _registry,
    get_study,
    register_study,
    unregister_study,
)

from ._toy import TOY, toy_plan, toy_run


def _claim(**kw):
    args = {"key": "1", "statement": "s", "paper": "p", "ours": "o", "holds": True, **kw}
    return Claim(**args)


@pytest.mark.parametrize(
    ("kw", "msg"),
    [
        ({"key": "a b"}, "Claim.key='a b' is not a valid name"),
        ({"key": ""}, "Claim.key=''"),
        ({"holds": 1}, "Claim.holds=1 must be True or False"),
        ({"value": "0.3"}, "Claim.value='0.3' must be a number"),
        ({"error": True}, "Claim.error=True must be a number"),
        ({"ours": 0.3}, "Claim.ours=0.3 must be a string"),
    ],
)
def test_claim_validation(kw, msg):
    with pytest.raises(ConfigError, match=re.escape(msg)):
        _claim(**kw)


def test_claim_round_trip_and_deviation():
    c = _claim(value=0.25, error=0.01, paper_value=0.3)
    assert abs(c.deviation - (0.25 - 0.3)) < 1e-15
    assert Claim.from_dict(c.to_dict()) == c
    assert c.to_dict()["verdict"] == "holds"


def test_outcome_normalises_figures_and_refuses_bad_entries():
    fig = Figure()
    out = StudyOutcome(claims=[_claim()], figures={"a": fig}, notes="one note")
    assert (
        out.figures[0].name == "a" and out.figures[0].figure is fig and out.notes == ("one note",)
    )
    out = StudyOutcome(figures=[("a", fig, "cap"), ("b", fig)])
    assert [(f.name, f.caption) for f in out.figures] == [("a", "cap"), ("b", "")]
    with pytest.raises(ConfigError, match=r"claim keys must be unique.*\['1'\]"):
        StudyOutcome(claims=[_claim(), _claim()])
    with pytest.raises(ConfigError, match="figure names must be unique"):
        StudyOutcome(figures=[("a", fig), ("a", fig)])
    with pytest.raises(ConfigError, match="not a matplotlib Figure"):
        StudyOutcome(figures={"a": "figure.png"})
    with pytest.raises(ConfigError, match=r"figure name='\.\./x'"):
        StudyOutcome(figures={"../x": fig})
    with pytest.raises(ConfigError, match="not a DataFrame"):
        StudyOutcome(tables={"t": [1, 2]})
    with pytest.raises(ConfigError, match=r"headline\['x'\]=\[1\] must be a number or a string"):
        StudyOutcome(headline={"x": [1]})


def test_plan_context_and_study_validation(tmp_path):
    assert Plan(runs=["a", "b"], cpu_s=1).runs == ("a", "b")
    with pytest.raises(ConfigError, match=r"Plan\.cpu_s=-1 must be a number >= 0"):
        Plan(runs=(), cpu_s=-1)
    with pytest.raises(ConfigError, match=r"Plan\.runs must be a sequence of strings"):
        Plan(runs="one run", cpu_s=1)
    with pytest.raises(ConfigError, match="scale='huge' is not allowed"):
        StudyContext(scale="huge", out=tmp_path)
    with pytest.raises(ConfigError, match="executor='mpi' is not allowed"):
        StudyContext(scale="smoke", out=tmp_path, executor="mpi")
    assert StudyContext(scale="smoke", out=str(tmp_path)).out == tmp_path
    with pytest.raises(ConfigError, match="'all' is reserved"):
        Study(name="all", title="t", paper="p", run=toy_run, plan=toy_plan)
    with pytest.raises(ConfigError, match="scale='tiny' is not allowed"):
        Study(name="x", title="t", paper="p", run=toy_run, plan=toy_plan, scales=("tiny",))


def test_register_twice_and_conflicts(toys):
    register_study(TOY)  # the same study again: a no-op
    other = Study(name="toy", title="other", paper="p", run=toy_run, plan=toy_plan)
    with pytest.raises(ConfigError, match="a different study is already registered as 'toy'"):
        register_study(other)
    register_study(other, replace=True)
    assert get_study("toy").title == "other"
    register_study(TOY, replace=True)


@pytest.fixture
def plugin_dir(tmp_path, monkeypatch):
    """A folder on ``weightscape.__path__``: its packages import as ``weightscape.<name>``."""
    monkeypatch.setattr(weightscape, "__path__", [*weightscape.__path__, str(tmp_path)])
    names = []

    def make(name: str, code: str) -> None:
        pkg = tmp_path / name
        pkg.mkdir()
        (pkg / "__init__.py").write_text("")
        (pkg / "reproduce.py").write_text(textwrap.dedent(code))
        names.append(name)

    yield make
    for name in names:
        unregister_study(name)
        for mod in (f"weightscape.{name}.reproduce", f"weightscape.{name}"):
            sys.modules.pop(mod, None)


def test_builtin_study_is_imported_lazily(plugin_dir, monkeypatch):
    plugin_dir(
        "plugged",
        """
        from weightscape.reproduce import Plan, Study, StudyOutcome, register_study

        register_study(Study(name="plugged", title="Plugged", paper="p",
                             run=lambda ctx: StudyOutcome(), plan=lambda ctx: Plan((), 0.0)))
        """,
    )
    plugin_dir("silent", "x = 1\n")
    plugin_dir("needs_dep", "import weightscape_no_such_dependency\n")
    monkeypatch.setattr(_registry, "BUILTIN_STUDIES", ("plugged", "silent", "needs_dep", "ghost"))
    assert "weightscape.plugged.reproduce" not in sys.modules
    assert get_study("plugged").title == "Plugged"
    with pytest.raises(ConfigError, match="registered no study named 'silent'"):
        get_study("silent")
    # A missing dependency inside an existing study module is a real error, not "not implemented".
    with pytest.raises(ModuleNotFoundError, match="weightscape_no_such_dependency"):
        get_study("needs_dep")
    with pytest.raises(StudyNotImplementedError, match="study ghost is not implemented yet"):
        get_study("ghost")
    assert Path(sys.modules["weightscape.plugged.reproduce"].__file__).name == "reproduce.py"


def test_claim_text_is_one_line():
    # the printed `claim <k>: ...` line is one line of the output contract
    for field in ("statement", "paper", "ours"):
        kw = {"key": "1", "statement": "s", "paper": "p", "ours": "o", "holds": True}
        kw[field] = "0.3\n(Fig. 2)"
        with pytest.raises(ConfigError, match=f"Claim.{field}=.* must be one line"):
            Claim(**kw)
