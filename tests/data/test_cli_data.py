"""``weightscape data list|show``: output, and user mistakes as one line on stderr with exit 2."""

import json

import pytest

from weightscape.cli import main
from weightscape.cli.data import parse_options
from weightscape.errors import DatasetError


def test_list(capsys):
    assert main(["data", "list"]) == 0
    out = capsys.readouterr().out
    for name in ("random", "mnist", "fashion-mnist", "mnist-sample", "iris", "diabetes"):
        assert f"\n{name} " in "\n" + out
    assert "geiger2019-pca10" in out and "zou2021-pca20" in out


def test_show_text(capsys):
    code = main(["data", "show", "random", "-o", "P=10", "-o", "d=3", "--option", "P_test=4"])
    assert code == 0
    out = capsys.readouterr().out
    assert "x [10, 3], test [4, 3]" in out
    assert "train     counts -1: 5, +1: 5" in out and "test      counts -1: 2, +1: 2" in out
    assert "|x| min" in out and '"dataset": "random"' in out


def test_show_json_matches_library(capsys):
    args = ["data", "show", "iris", "-o", "classes=0,2", "-o", "balance=true", "--json"]
    assert main(args) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["summary"]["train_counts"] == {"setosa": 50, "virginica": 50}
    assert doc["provenance"]["options"]["classes"] == [0, 2]


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["data", "show", "nope"], "unknown dataset 'nope'"),
        (["data", "show", "random", "-o", "bogus=1"], "unknown option(s) bogus"),
        (["data", "show", "random", "-o", "labels=x"], "labels='x'"),
        (["data", "show", "random", "-o", "P=-5"], "P=-5"),
        (["data", "show", "random", "-o", "P=1.5"], "P=1.5"),
        (["data", "show", "random", "-o", "P"], "key=value"),
        (["data", "show", "random", "-o", "P=3", "-o", "P=4"], "twice"),
        (["data", "show", "iris", "-o", "preset=nope"], "preset='nope'"),
        (["data", "show", "iris", "-o", "pca=9"], "pca=9"),
        (["data", "show"], "Missing argument"),
    ],
)
def test_bad_input_exits_2_one_line(capsys, args, needle):
    assert main(args) == 2
    captured = capsys.readouterr()
    err = captured.err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and needle in err[0]
    assert captured.out == ""


def test_missing_mnist_path_exits_2(capsys, tmp_path):
    assert main(["data", "show", "mnist", "-o", f"path={tmp_path}"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(tmp_path) in err[0] and "idx files not found" in err[0]


def test_parse_options_values():
    opts = parse_options(
        [
            "P=10",
            "classes=3,5",
            "whiten=true",
            "normalize=none",
            "x=sqrt_d",
            "cache_dir=/tmp/a",
            "c=[1, 2]",
            "f=0.5",
        ]
    )
    assert opts == {
        "P": 10,
        "classes": [3, 5],
        "whiten": True,
        "normalize": None,
        "x": "sqrt_d",
        "cache_dir": "/tmp/a",
        "c": [1, 2],
        "f": 0.5,
    }
    with pytest.raises(DatasetError, match=r"^--option '=3' has an empty key"):
        parse_options(["=3"])
    with pytest.raises(DatasetError, match=r"^--data-option 'P' is not of the form key=value$"):
        parse_options(["P"], flag="--data-option")
    with pytest.raises(DatasetError, match=r"^--option P is given twice \('P=1' and 'P=2'\)$"):
        parse_options(["P=1", "P=2"])
