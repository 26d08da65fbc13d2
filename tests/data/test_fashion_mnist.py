"""The real Fashion-MNIST of Debian's dataset-fashion-mnist package (skipped where absent)."""

from pathlib import Path

import numpy as np
import pytest

from weightscape.data import load

FOLDER = Path("/usr/share/datasets/fashion-mnist")
pytestmark = pytest.mark.skipif(
    not FOLDER.is_dir(),
    reason="Fashion-MNIST not installed (apt-get install dataset-fashion-mnist)",
)


@pytest.fixture(scope="module")
def fashion():
    return load("fashion-mnist", path=FOLDER)


def test_shapes_and_label_counts(fashion):
    assert fashion.x.shape == (60000, 784) and fashion.x_test.shape == (10000, 784)
    # Fashion-MNIST is exactly balanced: 6000 per class in train, 1000 in test
    assert np.array_equal(np.bincount(fashion.y), [6000] * 10)
    assert np.array_equal(np.bincount(fashion.y_test), [1000] * 10)
    assert fashion.x.min() == 0.0 and fashion.x.max() == 1.0
    assert fashion.classes[0] == "T-shirt/top" and fashion.classes[9] == "Ankle boot"
    files = fashion.provenance["source"]["files"]
    assert set(files) == {"train_images", "train_labels", "test_images", "test_labels"}


def test_found_without_path_in_standard_location(monkeypatch, tmp_path):
    monkeypatch.delenv("WEIGHTSCAPE_DATA", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    ds = load("fashion-mnist", classes=[0, 1], train_size=10, test_size=10)
    assert ds.provenance["source"]["folder"] == str(FOLDER)


@pytest.mark.slow
def test_presets_on_fashion(fashion):
    geiger = load("fashion-mnist", preset="geiger2019-pca10", train_size=2000, seed=3)
    assert geiger.d == 10 and geiger.P == 2000 and geiger.n_test == 68000
    assert int(np.sum(geiger.y > 0)) == 1000
    np.testing.assert_allclose(np.linalg.norm(geiger.x, axis=1), np.sqrt(10), atol=1e-12)
    zou = load("fashion-mnist", preset="zou2021-pca20")
    assert zou.x.shape == (60000, 20) and zou.x_test.shape == (10000, 20)
    assert np.max(np.abs(zou.x.mean(axis=0))) < 1e-10  # centred on the training images
