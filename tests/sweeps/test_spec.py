"""Sweep specs: expansion, hashing and validation (property tests are derandomized)."""

import hashlib
import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from weightscape.errors import ConfigError, SweepError
from weightscape.sweeps import (
    DEMO_TASK,
    Sweep,
    config_hash,
    parse_assignment,
    parse_axis_values,
    resolve_config,
)

# value strategies per demo.ridge key (valid values only)
_POS_INT = st.integers(1, 64)
_VALUES = {
    "n": _POS_INT,
    "d": _POS_INT,
    "width": _POS_INT,
    "steps": _POS_INT,
    "log_every": _POS_INT,
    "seed": st.integers(0, 10**6),
    "data_seed": st.integers(0, 10**6),
    "lr": st.floats(1e-3, 2.0),
    "ridge": st.floats(0.0, 10.0),
    "noise": st.floats(0.0, 1.0),
}


@st.composite
def sweeps(draw):
    keys = draw(st.permutations(sorted(_VALUES)))
    n_axes = draw(st.integers(0, 3))
    n_zip = draw(st.integers(0, 2))
    n_base = draw(st.integers(0, 2))
    axis_keys = keys[:n_axes]
    zip_keys = keys[n_axes : n_axes + n_zip]
    base_keys = keys[n_axes + n_zip : n_axes + n_zip + n_base]
    axes = {k: draw(st.lists(_VALUES[k], min_size=1, max_size=3, unique=True)) for k in axis_keys}
    zips = []
    if zip_keys:
        length = draw(st.integers(1, 3))
        group = {}
        for k in zip_keys:
            group[k] = draw(st.lists(_VALUES[k], min_size=length, max_size=length, unique=True))
        zips.append(group)
    base = {k: draw(_VALUES[k]) for k in base_keys}
    return {"axes": axes, "zip": zips, "base": base}


@settings(derandomize=True, deadline=None, max_examples=60)
@given(sweeps())
def test_expansion_count_and_distinct_hashes(spec):
    s = Sweep(task="demo.ridge", **spec)
    configs = s.expand()
    lengths = [len(v) for v in spec["axes"].values()]
    lengths += [len(next(iter(g.values()))) for g in spec["zip"]]
    # expanded count equals the product of the axis lengths (a zip group is one axis)
    assert len(configs) == math.prod(lengths) == len(s)
    # distinct configs (axis values are distinct) give distinct hashes
    assert len({json.dumps(c, sort_keys=True) for c in configs}) == len(configs)
    assert len(set(s.hashes())) == len(configs)
    # every config holds every allowed key, the swept values and the base values
    for c in configs:
        assert set(c) == set(DEMO_TASK.defaults)
        for k, v in spec["base"].items():
            assert c[k] == v


@settings(derandomize=True, deadline=None, max_examples=60)
@given(sweeps(), st.randoms(use_true_random=False))
def test_hash_stable_under_key_order(spec, rnd):
    s = Sweep(task="demo.ridge", **spec)
    for c in s.expand():
        items = list(c.items())
        rnd.shuffle(items)
        assert config_hash(dict(items)) == config_hash(c)
    # the same spec with its tables in reversed key order expands to the same hashes
    rev = Sweep(
        task="demo.ridge",
        base=dict(reversed(list(spec["base"].items()))),
        axes=dict(reversed(list(spec["axes"].items()))),
        zip=[dict(reversed(list(g.items()))) for g in spec["zip"]],
    )
    assert set(rev.hashes()) == set(s.hashes())


@settings(derandomize=True, deadline=None, max_examples=60)
@given(st.sampled_from(sorted(_VALUES)), st.data())
def test_one_changed_value_changes_the_hash(key, data):
    a = resolve_config(DEMO_TASK, {})
    value = data.draw(_VALUES[key].filter(lambda v: v != a[key]))
    b = resolve_config(DEMO_TASK, {key: value})
    assert config_hash(a) != config_hash(b)


def test_config_hash_is_sha256_of_sorted_compact_json():
    # independent oracle: the hash written out by hand
    text = '{"a":1,"b":[1,2],"c":"x"}'
    assert (
        config_hash({"c": "x", "b": [1, 2], "a": 1})
        == hashlib.sha256(text.encode()).hexdigest()[:12]
    )


def test_int_for_float_default_is_the_same_run():
    assert Sweep(task="demo.ridge", base={"lr": 1}).hashes() == (
        Sweep(task="demo.ridge", base={"lr": 1.0}).hashes()
    )


def test_zip_and_axes_order_and_dims():
    s = Sweep(
        task="demo.ridge",
        axes={"seed": [0, 1], "width": [4, 8, 16]},
        zip=[{"n": [16, 32], "d": [4, 8]}],
    )
    assert s.dims == ["seed", "width", "n"] and s.shape == (2, 3, 2)
    cfgs = s.expand()
    assert [(c["seed"], c["width"], c["n"], c["d"]) for c in cfgs[:3]] == [
        (0, 4, 16, 4),
        (0, 4, 32, 8),
        (0, 8, 16, 4),
    ]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"axes": {"widht": [1]}}, r"unknown config key 'widht'.*allowed: \['d', 'data_seed'"),
        ({"base": {"train": {"lr": 1}}}, r"unknown config key 'train.lr'"),
        ({"axes": {"seed": [1, 1]}}, r"repeats the value 1"),
        ({"axes": {"seed": []}}, r"has no values"),
        ({"zip": [{"n": [1, 2], "d": [1]}]}, r"different lengths"),
        ({"base": {"seed": 1}, "axes": {"seed": [2, 3]}}, r"set in both base and axes"),
    ],
)
def test_spec_errors_are_one_line(kwargs, match):
    with pytest.raises(SweepError, match=match) as err:
        Sweep(task="demo.ridge", **kwargs)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"axes": {"width": [4, -1]}}, r"width=-1 must be > 0"),
        ({"base": {"width": 2.5}}, r"width=2.5 must be an integer"),
        ({"base": {"lr": "fast"}}, r"lr='fast' must be a number"),
        ({"base": {"lr": 3.0}}, r"lr=3.0 must be <= 2"),
    ],
)
def test_bad_values(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        Sweep(task="demo.ridge", **kwargs)


def test_unknown_task_lists_registered():
    with pytest.raises(SweepError, match=r"unknown task 'nope'; registered tasks: \[.*demo.ridge"):
        Sweep(task="nope")


def test_from_file_toml_and_json_agree(tmp_path):
    (tmp_path / "s.toml").write_text(
        'task = "demo.ridge"\n[base]\nsteps = 5\n[axes]\nseed = {range = 3}\n'
        "lr = {linspace = [0.1, 0.3, 3]}\n[[zip]]\nn = [8, 16]\nd = [2, 4]\n"
    )
    spec = {
        "task": "demo.ridge",
        "base": {"steps": 5},
        "axes": {"seed": [0, 1, 2], "lr": [0.1, 0.2, 0.3]},
        "zip": [{"n": [8, 16], "d": [2, 4]}],
    }
    (tmp_path / "s.json").write_text(json.dumps(spec))
    a, b = Sweep.from_file(tmp_path / "s.toml"), Sweep.from_file(tmp_path / "s.json")
    # linspace values agree with the literal list to the last bit only where they are exact;
    # compare with a relative tolerance of 1e-15 (one rounding of np.linspace)
    assert a.axes["seed"] == [0, 1, 2]
    assert a.axes["lr"] == pytest.approx([0.1, 0.2, 0.3], rel=1e-15)
    assert len(a) == len(b) == 18


def test_from_file_errors(tmp_path):
    (tmp_path / "bad.toml").write_text("task = \n")
    with pytest.raises(SweepError, match="does not parse"):
        Sweep.from_file(tmp_path / "bad.toml")
    (tmp_path / "k.toml").write_text('task = "demo.ridge"\n[axis]\nseed = [1]\n')
    with pytest.raises(SweepError, match=r"unknown key 'axis'.*allowed: \['task', 'base'"):
        Sweep.from_file(tmp_path / "k.toml")
    with pytest.raises(SweepError, match="does not exist"):
        Sweep.from_file(tmp_path / "missing.toml")


def test_overrides_replace_axes_and_base():
    s = Sweep(task="demo.ridge", base={"n": 8}, axes={"seed": [0, 1]}, zip=[{"d": [1, 2]}])
    t = s.with_overrides(sets={"seed": 5}, axes={"n": [8, 16], "d": [3]})
    assert t.base == {"seed": 5} and t.axes == {"n": [8, 16], "d": [3]} and t.zip == ()
    assert len(t) == 2


def test_parse_cli_values():
    assert parse_assignment("lr=0.5") == ("lr", 0.5)
    assert parse_assignment("name=abc") == ("name", "abc")
    assert parse_axis_values("seed=0,1,2") == ("seed", [0, 1, 2])
    assert parse_axis_values("seed=range(1,4)") == ("seed", [1, 2, 3])
    assert parse_axis_values("w=[[1,2],[3]]") == ("w", [[1, 2], [3]])
    with pytest.raises(SweepError):
        parse_assignment("lr")


def test_one_key_value_parser_for_sets_and_data_options():
    # hand-made table: the plain grammar (--set, --slurm) keeps commas and the word none;
    # lists=True (data-set options) reads comma lists and none -> None
    from weightscape.sweeps import parse_assignments, parse_value

    table = [
        ("10", 10, 10),
        ("0.5", 0.5, 0.5),
        ("true", True, True),
        ("null", None, None),
        ("none", "none", None),
        ("None", "None", None),
        ("[1, 2]", [1, 2], [1, 2]),
        ('"a,b"', "a,b", "a,b"),
        ("3,5", "3,5", [3, 5]),
        ("unsat_zero,grad_norm", "unsat_zero,grad_norm", ["unsat_zero", "grad_norm"]),
        ("a, 1.5, ,true", "a, 1.5, ,true", ["a", 1.5, True]),
        ("/tmp/x=y", "/tmp/x=y", "/tmp/x=y"),
    ]
    for text, plain, lists in table:
        assert parse_value(text) == plain, text
        assert parse_value(text, lists=True) == lists, text
    assert parse_assignment(" path = /tmp/x=y ") == ("path", "/tmp/x=y")  # first '=' splits
    assert parse_assignments(["a=1", "b=x,y"], lists=True) == {"a": 1, "b": ["x", "y"]}
    assert parse_assignments(None) == {}
    # one-line errors naming the flag and the bad text
    for items, msg in (
        (["lr"], "--set 'lr' is not of the form key=value"),
        (["=3"], "--set '=3' has an empty key (expected key=value)"),
        (["lr=1", "lr=2"], "--set lr is given twice ('lr=1' and 'lr=2')"),
    ):
        with pytest.raises(SweepError) as info:
            parse_assignments(items, flag="--set")
        assert str(info.value) == msg


def test_spec_file_that_is_not_utf8_is_a_one_line_error(tmp_path):
    path = tmp_path / "latin1.toml"
    path.write_bytes('task = "demo.ridge"\n# r\xe9sum\xe9\n'.encode("latin-1"))
    with pytest.raises(SweepError, match="is not UTF-8 text"):
        Sweep.from_file(path)


@pytest.mark.parametrize(
    ("axes", "match"),
    [
        ({"seed": {"range": 2.9}}, "range needs whole numbers"),
        ({"seed": {"range": True}}, "range needs whole numbers"),
        ({"lr": {"linspace": [0.1, 0.2, 2.5]}}, "linspace needs whole numbers for its count"),
        ({"seed": {}}, "'seed' is an empty table"),
    ],
)
def test_axis_tables_are_not_silently_rounded_or_dropped(axes, match):
    # 2.9 became range(2), true became [0], n = 2.5 became 2, and {} dropped the axis
    with pytest.raises(SweepError, match=match):
        Sweep(task="demo.ridge", axes=axes)
    with pytest.raises(SweepError, match=match):
        Sweep(task="demo.ridge", zip=[{"width": [4, 8], **axes}])


def test_nan_is_refused_and_negative_zero_is_zero():
    # NaN passed every key whose default is None and hashed as the bare word NaN (while the
    # folder recorded null, so a resume saw another sweep); -0.0 and 0.0 were two configs
    with pytest.raises(ConfigError, match="ridge=nan must be finite"):  # the task's own check
        Sweep(task="demo.ridge", base={"ridge": math.nan})
    with pytest.raises(ConfigError, match=r"net\.out_dim=nan is not a config value"):
        Sweep(task="train", base={"net.out_dim": math.nan})  # a key without a type
    with pytest.raises(SweepError, match="repeats the value"):
        Sweep(task="demo.ridge", axes={"ridge": [0.0, -0.0]})
    assert config_hash(resolve_config(DEMO_TASK, {"ridge": -0.0})) == config_hash(
        resolve_config(DEMO_TASK, {"ridge": 0.0})
    )
