"""Batched Adam / SGD trajectories against torch.optim on the standalone nets, step by step."""

import pytest
import torch

from weightscape.nets import Ensemble, MLPSpec
from weightscape.train import TrainConfig, train

from ._cases import binary_data, class_data

# Same operations in a different order (batched GEMMs, foreach updates): agreement to rounding,
# 1e-12 relative over 25 steps (ReLU nets are piecewise linear, no pattern flips at this size).
TOL = 1e-12
STEPS = 25


def _torch_loss(name, f, y):
    if name == "quadratic_hinge":
        return (0.5 * torch.relu(1.0 - y * f.squeeze(-1)) ** 2).mean()
    if name == "mse":
        t = torch.nn.functional.one_hot(y, f.shape[-1]).to(f.dtype)
        return (0.5 * ((f - t) ** 2).sum(-1)).mean()
    return torch.nn.functional.cross_entropy(f, y)


def _record(ens, out):
    def cb(step):
        out.append([p.clone() for p in ens.params])

    return cb


def _rel(a, b):
    return ((a - b).abs().max() / b.abs().max().clamp_min(1e-300)).item()


@pytest.mark.parametrize(
    ("loss", "opt", "options", "l2"),
    [
        ("quadratic_hinge", "adam", {}, 0.0),
        ("quadratic_hinge", "adam", {"betas": (0.8, 0.99), "eps": 1e-6}, 1e-3),
        ("quadratic_hinge", "sgd", {"momentum": 0.9}, 0.0),
        ("quadratic_hinge", "sgd", {"momentum": 0.9, "nesterov": True}, 1e-2),
        ("quadratic_hinge", "sgd", {}, 0.0),
        ("mse", "adam", {}, 0.0),
        ("mse", "sgd", {"momentum": 0.9}, 1e-3),
        ("cross_entropy", "adam", {}, 1e-3),
        ("cross_entropy", "sgd", {"momentum": 0.5}, 0.0),
    ],
)
def test_trajectory_equals_torch_optim(loss, opt, options, l2):
    P, d = 40, 6
    if loss == "quadratic_hinge":
        x, y = binary_data(P, d, seed=1)
        out_dim = 1
    else:
        out_dim = 3
        x, y = class_data(P, d, out_dim, seed=1)
    specs = [MLPSpec(d_in=d, widths=(8, 5), out_dim=out_dim, init="torch")] * 3
    ens = Ensemble.init(specs, [0, 1, 2])
    lrs = (1e-2, 3e-3, 2e-2) if opt == "adam" else (5e-2, 1e-1, 2e-2)
    refs = [ens.to_module(m) for m in range(3)]
    cfg = TrainConfig(
        loss=loss,
        optimizer=opt,
        optimizer_options=options,
        lr=lrs,
        l2=l2,
        max_steps=STEPS,
        stop=(),
        poll_every=1,
    )
    traj = []
    train(ens, x, y, cfg, callback=_record(ens, traj), progress=False)
    assert len(traj) == STEPS
    for m, net in enumerate(refs):
        if opt == "adam":
            o = torch.optim.Adam(net.parameters(), lr=lrs[m], weight_decay=l2, **options)
        else:
            o = torch.optim.SGD(net.parameters(), lr=lrs[m], weight_decay=l2, **options)
        for step in range(STEPS):
            o.zero_grad()
            _torch_loss(loss, net(x), y).backward()
            o.step()
            ours = ens.member_params(m, traj[step])
            for a, b in zip(ours, net.parameters(), strict=True):
                assert _rel(a, b.detach()) < TOL, (m, step)
