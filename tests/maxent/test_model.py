"""IsingModel: validation, energy vs explicit sums, files (.npz round trip, text / .npy import)."""

import numpy as np
import pytest
import torch

from weightscape.errors import ConfigError, DataNotFoundError, DatasetError
from weightscape.maxent import IsingModel, read_matrix

from .conftest import random_model


def test_energy_matches_explicit_double_sum():
    model = random_model(7, 0.5, 0.4, seed=1)
    J, h = model.J.numpy(), model.h.numpy()
    rng = np.random.default_rng(0)
    sig = rng.choice([-1, 1], size=(20, 7)).astype(np.int8)
    expected = [
        -(sum(J[i, j] * s[i] * s[j] for i in range(7) for j in range(i + 1, 7)) + h @ s)
        for s in sig.astype(float)
    ]
    # float64 sums of O(1) terms: round-off ~1e-15.
    np.testing.assert_allclose(model.energy(sig).numpy(), expected, atol=1e-12)
    assert model.energy(sig).dtype == torch.float64


def test_strict_constructor_rejects_bad_couplings():
    J = np.array([[0.0, 1.0], [0.5, 0.0]])
    with pytest.raises(DatasetError, match="not symmetric"):
        IsingModel(J, np.zeros(2))
    with pytest.raises(DatasetError, match="diagonal"):
        IsingModel(np.eye(2), np.zeros(2))
    with pytest.raises(DatasetError, match="shape"):
        IsingModel(np.zeros((2, 2)), np.zeros(3))
    with pytest.raises(DatasetError, match="finite"):
        IsingModel(np.array([[0.0, np.nan], [np.nan, 0.0]]), np.zeros(2))


def test_from_couplings_symmetrises_and_zeroes_diagonal():
    J = np.array([[3.0, 1.0, 2.0], [0.0, 5.0, 4.0], [0.0, 0.0, 7.0]])
    model = IsingModel.from_couplings(J, [1, 2, 3])
    expected = np.array([[0.0, 0.5, 1.0], [0.5, 0.0, 2.0], [1.0, 2.0, 0.0]])
    np.testing.assert_array_equal(model.J.numpy(), expected)
    np.testing.assert_array_equal(model.h.numpy(), [1.0, 2.0, 3.0])


def test_npz_round_trip_is_bitwise(tmp_path):
    model = random_model(9, 0.3, 0.2, seed=5)
    path = model.save(tmp_path / "model.npz")
    back = IsingModel.load(path)
    assert torch.equal(back.J, model.J) and torch.equal(back.h, model.h)
    also = IsingModel.from_files(path)
    assert torch.equal(also.J, model.J)


def test_text_and_npy_import(tmp_path):
    rng = np.random.default_rng(2)
    A = rng.normal(size=(5, 5))
    h = rng.normal(size=5)
    np.savetxt(tmp_path / "J.txt", A)
    np.savetxt(tmp_path / "h.txt", h)
    np.save(tmp_path / "J.npy", A)
    np.save(tmp_path / "h.npy", h)
    expected = 0.5 * (A + A.T)
    np.fill_diagonal(expected, 0.0)
    for jf, hf in [("J.txt", "h.txt"), ("J.npy", "h.npy"), ("J.txt", "h.npy")]:
        model = IsingModel.from_files(tmp_path / jf, tmp_path / hf)
        # savetxt writes 18 significant digits: text round trip exact to ~1e-16 relative.
        np.testing.assert_allclose(model.J.numpy(), expected, rtol=1e-15, atol=1e-15)
        np.testing.assert_allclose(model.h.numpy(), h, rtol=1e-15)
    (tmp_path / "Jc.txt").write_text("0, 1\n1, 0\n")
    assert IsingModel.from_files(tmp_path / "Jc.txt").J[0, 1] == 1.0


def test_import_errors(tmp_path):
    with pytest.raises(DataNotFoundError):
        read_matrix(tmp_path / "missing.txt")
    (tmp_path / "bad.txt").write_text("1 2\n3\n")
    with pytest.raises(DatasetError):
        read_matrix(tmp_path / "bad.txt")
    np.save(tmp_path / "rect.npy", np.zeros((2, 3)))
    with pytest.raises(DatasetError, match="square"):
        IsingModel.from_files(tmp_path / "rect.npy")
    np.save(tmp_path / "sq.npy", np.zeros((3, 3)))
    np.save(tmp_path / "h4.npy", np.zeros(4))
    with pytest.raises(DatasetError, match="fields"):
        IsingModel.from_files(tmp_path / "sq.npy", tmp_path / "h4.npy")
    # fields are a vector (one row or column), not any array with N entries
    np.save(tmp_path / "h23.npy", np.zeros((3, 3)))
    with pytest.raises(DatasetError, match=r"shape \(3, 3\); expected a vector"):
        IsingModel.from_files(tmp_path / "sq.npy", tmp_path / "h23.npy")
    np.save(tmp_path / "hcol.npy", np.ones((3, 1)))
    assert IsingModel.from_files(tmp_path / "sq.npy", tmp_path / "hcol.npy").h.tolist() == [1.0] * 3
    # a text file or .npy that does not hold real numbers is a one-line DatasetError, not a cast
    np.save(tmp_path / "cplx.npy", np.array([[0, 1 + 2j], [1 - 2j, 0]]))
    with pytest.raises(DatasetError, match="complex128, not a real number type"):
        read_matrix(tmp_path / "cplx.npy")
    np.save(tmp_path / "str.npy", np.array([["a", "b"], ["c", "d"]]))
    with pytest.raises(DatasetError, match="not a real number type"):
        read_matrix(tmp_path / "str.npy")
    (tmp_path / "empty.npy").write_bytes(b"")
    with pytest.raises(DatasetError, match="cannot read a numeric matrix"):
        read_matrix(tmp_path / "empty.npy")


def test_one_spin_text_model(tmp_path):
    # a 1 × 1 coupling text file is the one-spin model, as the same matrix as .npy is
    (tmp_path / "J1.txt").write_text("0.5\n")
    (tmp_path / "h1.txt").write_text("0.25\n")
    np.save(tmp_path / "J1.npy", np.array([[0.5]]))
    for jf in ("J1.txt", "J1.npy"):
        model = IsingModel.from_files(tmp_path / jf, tmp_path / "h1.txt")
        assert model.J.tolist() == [[0.0]] and model.h.tolist() == [0.25]


def test_vector_round_trip_and_tilt():
    model = random_model(6, 0.3, 0.2, seed=7)
    back = IsingModel.from_vector(model.h, model.couplings_upper())
    assert torch.equal(back.J, model.J)
    ref = torch.tensor([1, -1, 1, 1, -1, -1], dtype=torch.float64)
    tilted = model.tilted(0.7, ref)
    assert torch.equal(tilted.h, model.h + 0.7 * ref) and tilted.J.data_ptr() == model.J.data_ptr()


@pytest.mark.parametrize(
    ("config", "field"),
    [
        ("PseudoLikelihoodConfig", "l1"),
        ("PseudoLikelihoodConfig", "l2"),
        ("PseudoLikelihoodConfig", "gtol"),
        ("BoltzmannBPConfig", "eta_J"),
        ("BoltzmannBPConfig", "l2"),
        ("BoltzmannBPConfig", "tol"),
        ("ExactBoltzmannConfig", "l2"),
        ("ExactBoltzmannConfig", "gtol"),
        ("TAPConfig", "tol"),
        ("TAPConfig", "distinct_tol"),
        ("MeanFieldConfig", "ridge"),
    ],
)
def test_inverse_method_settings_refuse_infinity(config, field):
    # an infinite penalty, rate or tolerance is never meant (a tolerance of inf stops at the
    # first step and reports convergence): one ConfigError naming the field
    import weightscape.maxent as mx

    with pytest.raises(ConfigError, match=rf"^{field}=inf must be finite"):
        getattr(mx, config)(**{field: float("inf")})


def test_a_model_needs_a_spin():
    with pytest.raises(DatasetError, match="no spins"):
        IsingModel(torch.zeros(0, 0, dtype=torch.float64), torch.zeros(0, dtype=torch.float64))


def test_column_major_couplings_are_stored_row_major(tmp_path):
    # torch.linalg.inv (mean-field, TAP) returns column-major matrices and an .npz keeps
    # Fortran order; the BP kernels flatten J with views, which crashed on such a J
    from weightscape.maxent import LandscapeConfig, entropy_landscape

    J = np.asfortranarray(random_model(6, 0.3, 0.2, seed=3).J.numpy())
    np.savez(tmp_path / "f.npz", J=J, h=np.zeros(6))
    for model in (IsingModel(torch.from_numpy(J), torch.zeros(6, dtype=torch.float64)),
                  IsingModel.load(tmp_path / "f.npz")):  # fmt: skip
        assert model.J.is_contiguous()
        res = entropy_landscape(model, np.ones(6), LandscapeConfig(x_min=-1, x_max=1, x_step=0.5))
        assert res.converged.all()
