"""Fixtures of the data tests: a private PCA cache, so tests never write under ~/.cache."""

import pytest


@pytest.fixture(autouse=True)
def _private_cache(tmp_path_factory, monkeypatch):
    root = tmp_path_factory.getbasetemp() / "weightscape-cache"
    monkeypatch.setenv("WEIGHTSCAPE_CACHE", str(root))
    return root
