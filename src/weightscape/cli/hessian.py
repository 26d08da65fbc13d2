"""``weightscape hessian RUN_DIR``: add Hessian spectra (H0, Hp, H) to a finished training run."""

from __future__ import annotations

import typer

from ..errors import ConfigError

__all__ = ["parse_members", "register"]


def parse_members(text: str | None) -> list[int] | None:
    """``"0,2,5"`` or ``"0-3,7"`` → member indices; None → all members."""
    if text is None or not text.strip():
        return None
    out: list[int] = []
    for part in text.split(","):
        part = part.strip()
        lo, sep, hi = part.partition("-")
        try:
            if sep:
                a, b = int(lo), int(hi)
                if b < a:
                    raise ValueError
                out.extend(range(a, b + 1))
            else:
                out.append(int(part))
        except ValueError:
            raise ConfigError(
                f"--members {text!r}: {part!r} is not an index or a range like 0-3"
            ) from None
    return out


def _loader(path):
    """Runs written by ``weightscape train`` / the "train" sweep task use the runs recipe;
    other layouts fall back to the curvature module's generic loader."""
    import json
    from pathlib import Path

    from ..curvature._run import load_run_inputs
    from ..runs import hessian_inputs

    cfg_file = Path(path) / "config.json"
    cfg = json.loads(cfg_file.read_text()).get("config", {}) if cfg_file.exists() else {}
    if isinstance(cfg, dict) and ("members" in cfg or "data.name" in cfg):
        return hessian_inputs(path)
    return load_run_inputs(path)


def _on_precision(inputs, precision):
    """The run's inputs (:class:`~weightscape.curvature.RunInputs`) in ``precision``: the
    ensemble's parameters and the inputs in its dtype on its device, the labels on its device
    (class labels stay integers). The Hessian follows the parameters' dtype and device."""
    import dataclasses

    from ..nets import Ensemble

    dt, dev = precision.torch_dtype, precision.torch_device
    ens = inputs.ensemble
    params = [p.detach().to(device=dev, dtype=dt) for p in ens.params]
    y = inputs.y.to(device=dev)
    if y.is_floating_point():
        y = y.to(dt)
    return dataclasses.replace(
        inputs,
        ensemble=Ensemble(ens.specs, params, seeds=ens.seeds),
        x=inputs.x.to(device=dev, dtype=dt),
        y=y,
    )


def register(app: typer.Typer) -> None:
    @app.command("hessian")
    def hessian(
        run_dir: str = typer.Argument(..., help="A finished run directory (with DONE)."),
        members: str = typer.Option(
            None, "--members", help="Members to analyse, e.g. 0,2 or 0-3 (default: all)."
        ),
        memory_mib: int = typer.Option(
            1024, "--memory-mib", help="Working-memory budget in MiB (N x N outputs on top)."
        ),
        method: str = typer.Option("auto", "--method", help="auto, structured or autodiff."),
        rtol: float = typer.Option(
            1e-9, "--rtol", help="Relative zero tolerance of the eigenvalue counts."
        ),
        device: str = typer.Option("cpu", "--device", help="cpu, cuda, cuda:<k> or auto."),
        dtype: str = typer.Option(
            "float64",
            "--dtype",
            help="float64 (default) or float32 (zero counts at --rtol 1e-9 need float64).",
        ),
    ) -> None:
        """Dense Hessian spectra (float64 by default) of the training loss for members of a run.

        The run's parameters and data are loaded, then moved to --device in --dtype; every
        Hessian and spectrum is computed there. Writes RUN/hessian.npz (eigenvalues of H0, Hp,
        H per member) and RUN/hessian.json (counts of negative/zero/positive eigenvalues,
        extremes, log-volume, timings).
        """
        from ..config import Precision
        from ..curvature import METHODS
        from ..curvature._run import run_hessian
        from ..errors import check_choice, check_positive

        check_choice("method", method, METHODS)
        check_positive("memory_mib", memory_mib, integer=True)
        check_positive("rtol", rtol, allow_zero=True)
        precision = Precision(dtype=dtype, device=device)
        payload = run_hessian(
            run_dir,
            members=parse_members(members),
            loader=lambda path: _on_precision(_loader(path), precision),
            memory_budget=memory_mib * 2**20,
            method=method,
            rtol=rtol,
        )
        for m, s in payload["members"].items():
            c = s["H"]
            typer.echo(
                f"member {m}: N={s['n_params']} N_delta={s['n_unsat']} "
                f"H: {c['negative']} neg / {c['zero']} zero / {c['positive']} pos, "
                f"max {c['max']:.4g} ({s['seconds']:.2f} s)"
            )
