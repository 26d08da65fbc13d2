"""Every ``weightscape`` command on realistic user mistakes: exit 2, one line ``error: ...`` on
stderr that names the bad value (and what is allowed), no traceback, and nothing written.

"Nothing written" is checked on the whole scratch folder the commands run in (it is also the
working directory): its tree of files, sizes and modification times is the same before and
after the command, so neither ``--out`` nor any input folder changed. Every mistake here is
rejected before any computation, so the whole file runs in a few seconds.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import numpy as np
import pytest

from weightscape.cli import main


def _snapshot(root: Path) -> dict:
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            st = p.stat()
            out[str(p.relative_to(root))] = (p.is_dir(), st.st_size, st.st_mtime_ns)
    return out


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    """A scratch folder with inputs of every kind, good and bad."""
    from weightscape.maxent import IsingModel, WeightSamples, save_weight_samples

    r = tmp_path_factory.mktemp("bad-input")
    (r / "notrun").mkdir()  # an empty folder: not a run, sweep or reproduce folder
    (r / "junk").mkdir()
    (r / "junk" / "a.txt").write_text("not a run\n")
    (r / "exists").mkdir()  # an existing --out, to be left exactly as it is
    (r / "exists" / "keep.txt").write_text("keep\n")
    np.savez(r / "noJ.npz", x=np.zeros(3))  # an .npz of the wrong kind
    rng = np.random.default_rng(0)
    J = rng.normal(size=(4, 4))
    IsingModel.from_couplings(J + J.T).save(r / "model.npz")
    (r / "rect.txt").write_text("1 2 3\n4 5 6\n")
    (r / "J.txt").write_text("0 1\n1 0\n")
    (r / "h3.txt").write_text("0 0 0\n")
    sigma = np.where(rng.random((10, 12)) < 0.5, -1, 1).astype(np.int8)
    ws = WeightSamples(
        sigma=sigma,
        accuracy=np.full(10, 0.5),
        run=np.zeros(10, dtype=np.int64),
        all_accuracy=np.full(10, 0.5),
        threshold=0.5,
        threshold_rule="absolute 0.5",
        layers={"LB": (0, 8), "RB": (8, 12)},
    )
    save_weight_samples(ws, r / "samples.npz", arch="4-2-2")
    (r / "bad.toml").write_text("[net\ndepth = 2\n")
    (r / "c.yaml").write_text("depth: 2\n")
    (r / "list.json").write_text("[1, 2]\n")
    (r / "seeds.toml").write_text('seeds = [0, "a"]\n[data]\nname = "random"\n')
    (r / "range.toml").write_text('seeds = "3-1"\n[data]\nname = "random"\n')
    (r / "spec.toml").write_text('task = "nope"\n')
    (r / "base.toml").write_text('task = "train"\nbase = 3\n')
    (r / "refs.txt").write_text("1 -1 1 -1\n-1 1 -1 1\n")
    (r / "fit").mkdir()  # a fit run dir with a report naming its samples
    IsingModel.from_couplings(J + J.T).save(r / "fit" / "model.npz")
    (r / "fit" / "fit_report.json").write_text(
        json.dumps({"samples": str(r / "samples.npz"), "slice": [0, 4], "layer": "0:4"})
    )
    # a finished (tiny) training run, for the commands that read one
    argv = ["train", "--data", "random", "-o", "P=10", "-o", "d=3", "--width", "2"]
    assert main([*argv, "--max-steps", "5", "--quiet", "--out", str(r / "run")]) == 0
    return r


# (argv, substrings the one-line message must contain). "{x}" is replaced by root / "x" in the
# arguments; the message is matched with root written as "R" (so "{x}" in a needle is "R/x").
OUT = ["--out", "{out}"]
CASES: list[tuple[list[str], list[str]]] = [
    # ---- root
    (["nope"], ["nope"]),
    (["--bogus"], ["--bogus"]),
    # ---- data show
    (["data", "show", "nope"], ["nope", "random"]),
    (["data", "show", "random", "-o", "P=-5"], ["P=-5", ">= 1"]),
    (["data", "show", "random", "-o", "P=0"], ["P=0", ">= 1"]),
    (["data", "show", "random", "-o", "P=abc"], ["'abc'", "integer"]),
    (["data", "show", "random", "-o", "colour=red"], ["colour", "allowed", "P_test"]),
    (["data", "show", "random", "-o", "P"], ["'P'", "key=value"]),
    (["data", "show", "random", "-o", "preset=nope"], ["nope"]),
    (["data", "show", "mnist", "-o", "path={missing}"], ["R/missing", "download"]),
    # ---- train
    (["train", "--data", "random", "--width", "20-x-10", *OUT], ["20-x-10"]),
    (["train", "--data", "random", "--seeds", "5-2", *OUT], ["--seeds='5-2'", "2-5"]),
    (["train", "--data", "random", "--seeds", "a", *OUT], ["'a'"]),
    (["train", "--data", "random", "--width", "-3", *OUT], ["-3", "positive"]),
    (["train", "--data", "random", "--width", "0", *OUT], ["width=0", "positive"]),
    (["train", "--data", "random", "--depth", "x", *OUT], ["'x'", "integer"]),
    (["train", "--data", "random", "--kappa", "-1", *OUT], ["--kappa=-1", ">= 0"]),
    (["train", "--data", "random", "--l2", "-1", *OUT], ["--l2=-1", ">= 0"]),
    (["train", "--data", "random", "--lr", "0", *OUT], ["--lr=0", "> 0"]),
    (
        ["train", "--data", "random", "--schedule", "cosine", *OUT],
        ["--schedule='cosine'", "constant"],
    ),
    (["train", "--data", "random", "--loss", "nope", *OUT], ["--loss='nope'", "hinge"]),
    (
        ["train", "--data", "random", "--optimizer", "rmsprop", *OUT],
        ["--optimizer='rmsprop'", "adam"],
    ),
    (
        ["train", "--data", "random", "--activation", "sigmoid", *OUT],
        ["--activation='sigmoid'", "relu"],
    ),
    (["train", "--data", "random", "--init", "xavier", *OUT], ["--init='xavier'", "geiger2019"]),
    (["train", "--data", "random", "--dtype", "float16", *OUT], ["--dtype='float16'", "float64"]),
    (["train", "--data", "random", "--device", "tpu", *OUT], ["--device='tpu'", "cpu"]),
    (["train", "--data", "random", "--max-steps", "-1", *OUT], ["--max-steps=-1", ">= 0"]),
    (["train", "--data", "random", "--batch-size", "-2", *OUT], ["--batch-size=-2", "> 0"]),
    (["train", "--data", "nope", *OUT], ["nope", "random"]),
    (["train", "--data", "random", "-o", "P=abc", *OUT], ["'abc'", "integer"]),
    (["train", "--data", "random", "--set", "train.lr=abc", *OUT], ["abc"]),
    (["train", "--data", "random", "--set", "train.lr", *OUT], ["'train.lr'", "key=value"]),
    (["train", "--config", "{missing}.toml", *OUT], ["missing.toml"]),
    (["train", "--config", "{notrun}", *OUT], ["R/notrun", "folder", ".toml"]),
    (["train", "--config", "{bad.toml}", *OUT], ["bad.toml"]),
    (["train", "--config", "{c.yaml}", *OUT], ["c.yaml", ".toml"]),
    (["train", "--data", "random", "--out", "{exists}"], ["exists", "already exists"]),
    (["train", "--data", "random", "--out", "{samples.npz}"], ["samples.npz"]),
    (["train", "--data", "random", "--stop", "unsat_zero,never", *OUT], ["never", "unsat_zero"]),
    (["train", "--data", "random", "--force", "--out", "{junk}"], ["R/junk", "config.json"]),
    (["train", "--data", "random", "--force", "--out", "{c.yaml}"], ["R/c.yaml", "is a file"]),
    (["train", "--config", "{list.json}", *OUT], ["R/list.json", "list", "table"]),
    (["train", "--data", "random", "-o", "P=0", *OUT], ["P=0", ">= 1"]),
    (["train", "--data", "random", "--kappa", "nan", *OUT], ["--kappa=nan", "not a config value"]),
    (["train", "--data", "random", "--out", "{c.yaml}/sub"], ["R/c.yaml/sub", "is a file"]),
    (["train", "--config", "{seeds.toml}", *OUT], ["R/seeds.toml", "seeds=[0, 'a']", "[0, 1]"]),
    (["train", "--config", "{range.toml}", *OUT], ["R/range.toml", "seeds='3-1'", "1-3"]),
    # ---- hessian
    (["hessian", "{missing}"], ["R/missing", "does not exist"]),
    (["hessian", "{run}/arrays.npz"], ["R/run/arrays.npz"]),
    (["hessian", "{run}", "--members", "99"], ["99", "0..0"]),
    (["hessian", "{run}", "--members", "-1"], ["'-1'", "0-3"]),
    (["hessian", "{run}", "--method", "nope"], ["--method='nope'", "auto"]),
    (["hessian", "{notrun}"], ["notrun"]),
    (["hessian", "{junk}"], ["junk"]),
    (["hessian", "{notrun}", "--members", "a"], ["'a'"]),
    (["hessian", "{notrun}", "--members", "5-2"], ["5-2"]),
    (["hessian", "{notrun}", "--method", "nope"], ["nope", "auto"]),
    (["hessian", "{notrun}", "--memory-mib", "0"], ["--memory-mib=0", "> 0"]),
    (["hessian", "{notrun}", "--rtol", "-1"], ["--rtol=-1", ">= 0"]),
    (["hessian", "{run}", "--rtol", "nan"], ["--rtol=nan", ">= 0"]),
    (["hessian", "{run}", "--device", "tpu"], ["--device='tpu'", "cpu", "cuda"]),
    (["hessian", "{run}", "--device", "cuda:x"], ["--device='cuda:x'", "cpu"]),
    (["hessian", "{run}", "--dtype", "float16"], ["--dtype='float16'", "float64", "float32"]),
    (["hessian", "{notrun}", "--device", "tpu"], ["--device='tpu'"]),
    # ---- sweep
    (["sweep", "run", *OUT], ["SPEC", "--task"]),
    (["sweep", "run", "--task", "nope", *OUT], ["nope", "train"]),
    (["sweep", "run", "{missing}.toml", *OUT], ["missing.toml"]),
    (["sweep", "run", "{bad.toml}", *OUT], ["bad.toml"]),
    (["sweep", "run", "{spec.toml}", *OUT], ["nope"]),
    (["sweep", "run", "{base.toml}", *OUT], ["base", "table", "3"]),
    (["sweep", "run", "--task", "train", "--executor", "nope", *OUT], ["nope", "inline"]),
    (["sweep", "run", "--task", "train", "--set", "nokey", *OUT], ["nokey", "key=value"]),
    (["sweep", "run", "--task", "train", "--set", "net.foo=1", *OUT], ["net.foo"]),
    (["sweep", "run", "--task", "train", "--axis", "seed", *OUT], ["seed"]),
    (["sweep", "run", "--task", "train", "--workers", "0", *OUT], ["--workers=0", "> 0"]),
    (["sweep", "run", "--task", "train", "--threads", "0", *OUT], ["--threads=0", "> 0"]),
    (["sweep", "run", "--task", "train", "--max-pack", "0", *OUT], ["--max-pack=0", "> 0"]),
    (["sweep", "run", "--task", "train", "--slurm", "bad", *OUT], ["bad", "key=value"]),
    (
        ["sweep", "run", "--task", "train", "--executor", "slurm", "--slurm", "time=abc", *OUT],
        ["time='abc'", "minutes"],
    ),
    (["sweep", "run", "--task", "train", "--out", "{exists}"], ["R/exists", "--resume"]),
    (["sweep", "run", "--task", "train", "--resume", "--out", "{junk}"], ["R/junk"]),
    (["sweep", "run", "--task", "train", "--dry-run", "--executor", "nope"], ["nope", "inline"]),
    (["sweep", "run", "--task", "train", "--dry-run", "--set", "train.lr=-1"], ["-1"]),
    (
        [
            "sweep",
            "run",
            "--task",
            "train",
            "--set",
            "data.name=mnist",
            "--set",
            "data.path={missing}",
            *OUT,
        ],
        ["R/missing", "download"],
    ),
    (
        [
            "sweep",
            "run",
            "--task",
            "train",
            "--set",
            "data.name=mnist-sample",
            "--set",
            "data.train_size=99999",
            *OUT,
        ],
        ["99999", "5000"],
    ),
    (["sweep", "run", "--task", "train", "--set", "data.P=-5", *OUT], ["P=-5", ">= 1"]),
    (["sweep", "run", "--task", "train", "--out", "{c.yaml}/sub"], ["R/c.yaml/sub"]),
    (["sweep", "status", "{missing}"], ["missing"]),
    (["sweep", "status", "{junk}"], ["junk"]),
    (["sweep", "collect", "{missing}"], ["missing"]),
    (["sweep", "collect", "{junk}"], ["junk"]),
    (["sweep", "collect", "{junk}", "--limit", "-1"], ["--limit=-1", ">= 0"]),
    # ---- report
    (["report", "{missing}"], ["missing"]),
    (["report", "{junk}"], ["R/junk", "summary.json"]),
    (["report", "{run}/arrays.npz"], ["R/run/arrays.npz", "folder"]),
    # ---- reproduce
    (["reproduce", "nope", "--scale", "smoke", *OUT], ["nope", "jamming"]),
    (["reproduce", "jamming", "nope", "--scale", "smoke", *OUT], ["nope", "jamming"]),
    (["reproduce", "jamming", "--scale", "huge", *OUT], ["--scale='huge'", "smoke"]),
    (
        ["reproduce", "jamming", "--scale", "smoke", "--executor", "nope", *OUT],
        ["--executor='nope'", "inline"],
    ),
    (["reproduce", "jamming", "--scale", "smoke", "--device", "tpu", *OUT], ["tpu", "cpu"]),
    (["reproduce", "jamming", "--scale", "smoke", "--dtype", "float16", *OUT], ["float16"]),
    (
        ["reproduce", "jamming", "--scale", "smoke", "--seed", "x", *OUT],
        ["'x'", "--seed", "integer"],
    ),
    (["reproduce", "jamming", "--scale", "smoke", "--out", "{exists}"], ["R/exists", "--force"]),
    (["reproduce", "jamming", "--scale", "smoke", "--force", "--out", "{junk}"], ["R/junk"]),
    (["reproduce", "jamming", "--scale", "smoke", "--resume", "--out", "{junk}"], ["R/junk"]),
    (["reproduce", "jamming", "--scale", "smoke", "--force", "--out", "{run}"], ["R/run"]),
    (["reproduce", "jamming", *OUT], ["--scale"]),
    (
        ["reproduce", "jamming", "--scale", "smoke", "--seed", "-1", *OUT],
        ["--seed=-1", ">= 0"],
    ),
    (["reproduce", "jamming", "--scale", "smoke", "--out", "{c.yaml}/sub"], ["R/c.yaml"]),
    # ---- jamming phase-diagram
    (["jamming", "phase-diagram", "--depths", "1,x", *OUT], ["1,x"]),
    (["jamming", "phase-diagram", "--depths", "0", *OUT], ["--depths '0'", "positive"]),
    (["jamming", "phase-diagram", "--P", "-5", *OUT], ["--P '-5'", "positive"]),
    (["jamming", "phase-diagram", "--protocol", "nope", *OUT], ["nope", "fast"]),
    (["jamming", "phase-diagram", "--max-steps", "0", *OUT], ["--max-steps=0", "> 0"]),
    (["jamming", "phase-diagram", "--seeds", "0", *OUT], ["--seeds=0", "> 0"]),
    (
        ["jamming", "phase-diagram", "--widths-per-round", "0", *OUT],
        ["--widths-per-round=0", "> 0"],
    ),
    (["jamming", "phase-diagram", "--max-rounds", "0", *OUT], ["--max-rounds=0", "> 0"]),
    (["jamming", "phase-diagram", "--ratio-guess", "-1", *OUT], ["--ratio-guess=-1", "> 0"]),
    (["jamming", "phase-diagram", "--data", "nope", *OUT], ["--data='nope'", "random"]),
    (
        ["jamming", "phase-diagram", "--data", "mnist-sample", "--P", "99999", *OUT],
        ["99999", "5000"],
    ),
    (["jamming", "phase-diagram", "--executor", "nope", *OUT], ["--executor='nope'", "inline"]),
    (["jamming", "phase-diagram", "--out", "{exists}"], ["exists", "--resume"]),
    (["jamming", "phase-diagram", "--ratio-guess", "nan", *OUT], ["--ratio-guess=nan", "> 0"]),
    (["jamming", "phase-diagram", "--ratio-guess", "inf", *OUT], ["--ratio-guess=inf", "finite"]),
    (["jamming", "phase-diagram", "--out", "{c.yaml}/sub"], ["R/c.yaml/sub", "is a file"]),
    (["jamming", "phase-diagram", "--out", "{c.yaml}"], ["R/c.yaml", "is a file"]),
    (
        ["jamming", "phase-diagram", "--slurm", "partition=cpu", *OUT],
        ["--slurm 'partition=cpu'", "--executor slurm"],
    ),
    (["jamming", "phase-diagram", "--slurm", "partition", *OUT], ["'partition'", "key=value"]),
    # ---- jamming fixed-n
    (["jamming", "fixed-n", "--N", "0", *OUT], ["--N=0", "> 0"]),
    (["jamming", "fixed-n", "--N", "x", *OUT], ["'x'", "--N"]),
    (["jamming", "fixed-n", "--ratios", "a,b", *OUT], ["--ratios 'a,b'", "numbers"]),
    (["jamming", "fixed-n", "--ratios", "0,2", *OUT], ["--ratios '0,2'", "positive"]),
    (["jamming", "fixed-n", "--ratios", "2,inf", *OUT], ["--ratios '2,inf'", "finite"]),
    (
        ["jamming", "fixed-n", "--N", "30", "--ratios", "1.0,1.01", *OUT],
        ["--ratios", "[1.0, 1.01]", "2 distinct P", "depth 1"],
    ),
    (["jamming", "fixed-n", "--depths", "0", *OUT], ["--depths '0'", "positive"]),
    (["jamming", "fixed-n", "--depths", "1,x", *OUT], ["1,x"]),
    (["jamming", "fixed-n", "--seeds", "0", *OUT], ["--seeds=0", "> 0"]),
    (["jamming", "fixed-n", "--n-boot", "0", *OUT], ["--n-boot=0", "> 0"]),
    (["jamming", "fixed-n", "--data-seed", "-1", *OUT], ["--data-seed=-1", ">= 0"]),
    (["jamming", "fixed-n", "--protocol", "nope", *OUT], ["nope", "fast"]),
    (["jamming", "fixed-n", "--max-steps", "0", *OUT], ["--max-steps=0", "> 0"]),
    (["jamming", "fixed-n", "--executor", "nope", *OUT], ["--executor='nope'", "inline"]),
    (
        ["jamming", "fixed-n", "--slurm", "partition=cpu", *OUT],
        ["--slurm 'partition=cpu'", "--executor slurm", "'inline'"],
    ),
    (
        ["jamming", "fixed-n", "--executor", "slurm", "--slurm", "colour=red", *OUT],
        ["'colour'", "partition"],
    ),
    (["jamming", "fixed-n", "--out", "{exists}"], ["R/exists", "--resume"]),
    (["jamming", "fixed-n", "--out", "{c.yaml}"], ["R/c.yaml", "is a file"]),
    (["jamming", "fixed-n", "--out", "{c.yaml}/sub"], ["R/c.yaml/sub", "is a file"]),
    # ---- maxent landscape
    (["maxent", "landscape", *OUT], ["MODEL", "--couplings"]),
    (["maxent", "landscape", "{missing}.npz", *OUT], ["missing.npz"]),
    (["maxent", "landscape", "{noJ.npz}", *OUT], ["R/noJ.npz", "['x']", "'J'"]),
    (["maxent", "landscape", "{notrun}", *OUT], ["notrun"]),
    (["maxent", "landscape", "{model.npz}", "--couplings", "{J.txt}", *OUT], ["--couplings"]),
    (["maxent", "landscape", "--couplings", "{rect.txt}", *OUT], ["rect.txt", "square"]),
    (["maxent", "landscape", "--couplings", "{J.txt}", "--fields", "{h3.txt}", *OUT], ["h3.txt"]),
    (
        [
            "maxent",
            "landscape",
            "{model.npz}",
            "--references",
            "{refs.txt}",
            "--slice",
            "B:A",
            *OUT,
        ],
        ["B:A"],
    ),
    (
        [
            "maxent",
            "landscape",
            "{model.npz}",
            "--references",
            "{refs.txt}",
            "--slice",
            "3:1",
            *OUT,
        ],
        ["3:1"],
    ),
    (["maxent", "landscape", "{model.npz}", "--references", "{missing}.txt", *OUT], ["missing"]),
    (
        [
            "maxent",
            "landscape",
            "{model.npz}",
            "--references",
            "{refs.txt}",
            "--references-format",
            "csv",
            *OUT,
        ],
        ["--references-format='csv'", "authors"],
    ),
    (["maxent", "landscape", "{model.npz}", "--slice", "0:2", *OUT], ["--slice", "--references"]),
    (
        ["maxent", "landscape", "{model.npz}", "--first-sweep", "sideways", *OUT],
        ["--first-sweep='sideways'", "down"],
    ),
    (
        ["maxent", "landscape", "{model.npz}", "--init-messages", "ones", *OUT],
        ["--init-messages='ones'", "zero"],
    ),
    (
        ["maxent", "landscape", "{model.npz}", "--predictor", "spline", *OUT],
        ["--predictor='spline'", "linear"],
    ),
    (["maxent", "landscape", "{model.npz}", "--damping", "1.5", *OUT], ["--damping=1.5", "[0, 1)"]),
    (["maxent", "landscape", "{model.npz}", "--tol", "0", *OUT], ["--tol=0", "> 0"]),
    (["maxent", "landscape", "{model.npz}", "--max-iter", "0", *OUT], ["--max-iter=0", "> 0"]),
    (
        ["maxent", "landscape", "{model.npz}", "--criterion", "nope", *OUT],
        ["--criterion='nope'", "max_change"],
    ),
    (
        ["maxent", "landscape", "{model.npz}", "--accel", "nope", *OUT],
        ["--accel='nope'", "adaptive"],
    ),
    (
        ["maxent", "landscape", "{model.npz}", "--gap-average", "nope", *OUT],
        ["--gap-average='nope'", "down_converged"],
    ),
    (["maxent", "landscape", "{model.npz}", "--batch-size", "0", *OUT], ["--batch-size=0", "> 0"]),
    (["maxent", "landscape", "{model.npz}", "--device", "tpu", *OUT], ["--device='tpu'", "cpu"]),
    (["maxent", "landscape", "{model.npz}", "--x-step", "0", *OUT], ["--x-step=0", "> 0"]),
    (["maxent", "landscape", "{model.npz}", "--x-min", "3", "--x-max", "-3", *OUT], ["-3", "3"]),
    (
        ["maxent", "landscape", "{model.npz}", "--n-per-class", "0", *OUT],
        ["--n-per-class=0", "> 0"],
    ),
    (["maxent", "landscape", "{model.npz}", "--classes", "low,weird", *OUT], ["'weird'", "low"]),
    (["maxent", "landscape", "{model.npz}", "--mc-chains", "0", *OUT], ["--mc-chains=0", "> 0"]),
    (["maxent", "landscape", "{model.npz}", "--mc-samples", "0", *OUT], ["--mc-samples=0"]),
    (["maxent", "landscape", "{model.npz}", "--mc-thin", "0", *OUT], ["--mc-thin=0", "> 0"]),
    (["maxent", "landscape", "{model.npz}", "--mc-burn-in", "-1", *OUT], ["--mc-burn-in=-1"]),
    (["maxent", "landscape", "{model.npz}", "--jump-threshold", "-1", *OUT], ["-1", "> 0"]),
    (
        ["maxent", "landscape", "{model.npz}", "--references", "{refs.txt}", "--out", "{exists}"],
        ["exists"],
    ),
    (["maxent", "landscape", "{model.npz}", "--seed", "-1", *OUT], ["--seed=-1", ">= 0"]),
    (
        ["maxent", "landscape", "{model.npz}", "--force", "--out", "{model.npz}"],
        ["holds the input"],
    ),
    (["maxent", "landscape", "{model.npz}", "--tol", "nan", *OUT], ["--tol=nan", "> 0"]),
    (["maxent", "landscape", "{model.npz}", "--tol", "inf", *OUT], ["--tol=inf", "finite"]),
    # ---- maxent train
    (["maxent", "train", "--arch", "20-x-10", *OUT], ["20-x-10"]),
    (["maxent", "train", "--arch", "20", *OUT], ["'20'"]),
    (["maxent", "train", "--data", "cifar", *OUT], ["cifar", "mnist-sample"]),
    (["maxent", "train", "--P", "0", *OUT], ["--P", "0"]),
    (["maxent", "train", "--test-size", "0", *OUT], ["--test-size", "0"]),
    (["maxent", "train", "--runs", "0", *OUT], ["--runs=0"]),
    (["maxent", "train", "--epochs", "0", *OUT], ["--epochs=0"]),
    (["maxent", "train", "--batch-size", "0", *OUT], ["--batch-size=0"]),
    (["maxent", "train", "--lr", "-1", *OUT], ["--lr=-1"]),
    (["maxent", "train", "--lr", "abc", *OUT], ["abc"]),
    (["maxent", "train", "--l2", "-1", *OUT], ["--l2=-1", ">= 0"]),
    (["maxent", "train", "--preset", "nope", *OUT], ["nope", "zou2021-pca20"]),
    (["maxent", "train", "--init-std", "0", *OUT], ["--init-std=0"]),
    (["maxent", "train", "--init-std", "inf", *OUT], ["--init-std=inf", "finite"]),
    (["maxent", "train", "--l2", "inf", *OUT], ["--l2=inf", "finite"]),
    (["maxent", "train", "--seed", "-1", *OUT], ["--seed=-1", ">= 0"]),
    (["maxent", "train", "--out", "{exists}"], ["R/exists", "already exists", "--force"]),
    (["maxent", "train", "--force", "--out", "{junk}"], ["R/junk", "config.json"]),
    (["maxent", "train", "--lr", "inf", *OUT], ["--lr=inf", "finite"]),
    (["maxent", "train", "--lr", "nan", *OUT], ["--lr=nan", "> 0"]),
    # ---- maxent sample
    (["maxent", "sample", "{missing}", *OUT], ["missing"]),
    (["maxent", "sample", "{notrun}", *OUT], ["R/notrun"]),
    (["maxent", "sample", "{run}", *OUT], ["R/run", "maxent train"]),
    (["maxent", "sample", "{notrun}", "--draws", "0", *OUT], ["--draws=0"]),
    (["maxent", "sample", "{notrun}", "--kind", "median", *OUT], ["--kind='median'", "quantile"]),
    (["maxent", "sample", "{notrun}", "--threshold", "1.5", *OUT], ["--threshold=1.5", "[0, 1]"]),
    (["maxent", "sample", "{notrun}", "--threshold", "-0.1", *OUT], ["--threshold=-0.1", "[0, 1]"]),
    (["maxent", "sample", "{notrun}", "--seed", "-1", *OUT], ["--seed=-1", ">= 0"]),
    (["maxent", "sample", "{notrun}", "--out", "{exists}"], ["R/exists", "already exists"]),
    # ---- maxent fit
    (["maxent", "fit", "{missing}.npz", *OUT], ["missing.npz"]),
    (["maxent", "fit", "{notrun}", *OUT], ["R/notrun/samples.npz"]),
    (["maxent", "fit", "{model.npz}", *OUT], ["R/model.npz", "samples"]),
    (["maxent", "fit", "{noJ.npz}", *OUT], ["R/noJ.npz", "samples"]),
    (["maxent", "fit", "{samples.npz}", "--method", "ace", *OUT], ["ace", "pseudo"]),
    (["maxent", "fit", "{samples.npz}", "--layer", "MID", *OUT], ["MID", "LB"]),
    (["maxent", "fit", "{samples.npz}", "--layer", "8:2", *OUT], ["8:2"]),
    (["maxent", "fit", "{samples.npz}", "--layer", "0:99", *OUT], ["0:99", "12"]),
    (["maxent", "fit", "{samples.npz}", "--l1", "-1", *OUT], ["--l1=-1", ">= 0"]),
    (["maxent", "fit", "{samples.npz}", "--l2", "-1", *OUT], ["--l2=-1", ">= 0"]),
    (["maxent", "fit", "{samples.npz}", "--max-iter", "0", *OUT], ["--max-iter=0", "> 0"]),
    (["maxent", "fit", "{samples.npz}", "--evaluate", "nope", *OUT], ["--evaluate='nope'", "auto"]),
    (
        ["maxent", "fit", "{samples.npz}", "--method", "tap", "--ridge", "-1", *OUT],
        ["--ridge=-1", ">= 0"],
    ),
    (
        ["maxent", "fit", "{samples.npz}", "--method", "bp", "--keep-from", "-1", *OUT],
        ["--keep-from=-1", ">= 0"],
    ),
    (["maxent", "fit", "{samples.npz}", "--out", "{exists}"], ["exists"]),
    # a config field named by the flag the user typed (n_iter, n_chains)
    (
        ["maxent", "fit", "{samples.npz}", "--method", "bp", "--max-iter", "0", *OUT],
        ["--max-iter=0", "> 0"],
    ),
    (
        ["maxent", "fit", "{samples.npz}", "--method", "mc", "--max-iter", "0", *OUT],
        ["--max-iter=0", "> 0"],
    ),
    (
        ["maxent", "landscape", "{model.npz}", "--method", "mc", "--chains", "0", *OUT],
        ["--chains=0", "> 0"],
    ),
    (["maxent", "fit", "{samples.npz}", "--force", "--out", "{samples.npz}"], ["holds the input"]),
    (["maxent", "fit", "{samples.npz}", "--force", "--out", "{junk}"], ["R/junk", "config.json"]),
    (["maxent", "fit", "{samples.npz}", "--out", "{c.yaml}/sub"], ["R/c.yaml/sub"]),
    # ---- maxent validate
    (["maxent", "validate", "{missing}.npz", *OUT], ["missing.npz"]),
    (["maxent", "validate", "{noJ.npz}", "--samples", "{samples.npz}", *OUT], ["R/noJ.npz", "'J'"]),
    (["maxent", "validate", "{notrun}", "--samples", "{samples.npz}", *OUT], ["notrun"]),
    (["maxent", "validate", "{model.npz}", *OUT], ["--samples"]),
    (["maxent", "validate", "{fit}", "--mc-chains", "0", *OUT], ["--mc-chains=0"]),
    (["maxent", "validate", "{fit}", "--mc-burn-in", "-1", *OUT], ["--mc-burn-in=-1", ">= 0"]),
    (["maxent", "validate", "{fit}", "--mc-thin", "0", *OUT], ["--mc-thin=0", "> 0"]),
    (["maxent", "validate", "{fit}", "--mc-samples", "0", *OUT], ["--mc-samples=0", "> 0"]),
    (["maxent", "validate", "{fit}", "--samples", "{noJ.npz}", *OUT], ["R/noJ.npz"]),
    (["maxent", "validate", "{fit}", "--triplets", "-1", *OUT], ["--triplets=-1", ">= 0"]),
    (["maxent", "validate", "{fit}", "--layer", "LB", *OUT], ["LB", "N = 4"]),
    (["maxent", "validate", "{fit}", "--layer", "MID", *OUT], ["MID", "LB"]),
    (["maxent", "validate", "{fit}", "--seed", "-1", *OUT], ["--seed=-1", ">= 0"]),
    (["maxent", "validate", "{fit}", "--out", "{exists}"], ["R/exists", "already exists"]),
    # ---- maxent relabel
    (
        ["maxent", "relabel", "{samples.npz}", "--fractions", "abc", *OUT],
        ["--fractions 'abc'", "numbers"],
    ),
    (["maxent", "relabel", "{samples.npz}", "--fractions", "0.3,2", *OUT], ["0.3,2", "[0, 1]"]),
    (["maxent", "relabel", "{missing}.npz", *OUT], ["missing.npz"]),
    (["maxent", "relabel", "{samples.npz}", "--layers", "MID", *OUT], ["MID", "LB"]),
    (["maxent", "relabel", "{samples.npz}", "--l2", "-1", *OUT], ["--l2=-1", ">= 0"]),
    (["maxent", "relabel", "{samples.npz}", "--max-iter", "0", *OUT], ["--max-iter=0", "> 0"]),
    (["maxent", "relabel", "{samples.npz}", "--seed", "-1", *OUT], ["--seed=-1", ">= 0"]),
    (["maxent", "relabel", "{samples.npz}", "--out", "{exists}"], ["R/exists", "already exists"]),
    # ---- maxent frozen-centre
    (["maxent", "frozen-centre", "--arch", "784-x-10", *OUT], ["784-x-10"]),
    (["maxent", "frozen-centre", "--data", "cifar", *OUT], ["cifar", "mnist-sample"]),
    (["maxent", "frozen-centre", "--runs", "0", *OUT], ["--runs=0"]),
    (["maxent", "frozen-centre", "--epochs", "0", *OUT], ["--epochs=0"]),
    (["maxent", "frozen-centre", "--batch-size", "0", *OUT], ["--batch-size=0"]),
    (["maxent", "frozen-centre", "--lr", "0", *OUT], ["--lr=0"]),
    (["maxent", "frozen-centre", "--eval-draws", "0", *OUT], ["--eval-draws=0"]),
    (["maxent", "frozen-centre", "--frozen-layer", "7", *OUT], ["--frozen-layer=7", "0..2"]),
    (["maxent", "frozen-centre", "--frozen-layer", "-1", *OUT], ["--frozen-layer=-1", "0..2"]),
    (["maxent", "frozen-centre", "--P", "0", *OUT], ["--P", "0"]),
    (["maxent", "frozen-centre", "--test-size", "0", *OUT], ["--test-size=0"]),
    (["maxent", "frozen-centre", "--preset", "nope", *OUT], ["nope", "zou2021-pca20"]),
    (["maxent", "frozen-centre", "--seed", "-1", *OUT], ["--seed=-1", ">= 0"]),
    (["maxent", "frozen-centre", "--out", "{exists}"], ["R/exists", "already exists"]),
]


def _fill(arg: str, root: Path | str, out: str = "out") -> str:
    """``{name}`` in ``arg`` → ``root/name`` (``{out}`` → ``root/out``)."""
    return re.sub(r"\{([^{}]+)\}", lambda m: f"{root}/{out if m[1] == 'out' else m[1]}", arg)


@pytest.mark.parametrize(
    ("k", "argv", "needles"),
    [(k, *c) for k, c in enumerate(CASES)],
    ids=[" ".join(a) for a, _ in CASES],
)
def test_bad_input_is_one_line_exit_2_nothing_written(root, monkeypatch, capsys, k, argv, needles):
    monkeypatch.chdir(root)
    out = f"out{k}"  # a case that wrongly creates its --out leaves the others unaffected
    args = [_fill(a, root, out) for a in argv]
    before = _snapshot(root)
    code = main(args)
    captured = capsys.readouterr()
    err = captured.err.strip().splitlines()
    assert code == 2, (code, captured.err[-2000:])
    assert len(err) == 1 and err[0].startswith("error: "), err
    assert "Traceback" not in captured.err
    msg = err[0].replace(str(root), "R")
    for needle in needles:
        assert _fill(needle, "R", out) in msg, (needle, msg)
    assert _snapshot(root) == before  # --out not created, inputs and cwd untouched


def test_force_replaces_a_run_folder_or_an_empty_one(root, tmp_path, capsys):
    """The other side of the --force refusals above: a weightscape run folder (with config.json)
    or an empty folder is replaced."""
    argv = ["train", "--data", "random", "-o", "P=10", "-o", "d=3", "--width", "2"]
    argv += ["--max-steps", "3", "--quiet", "--force", "--out"]
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main([*argv, str(empty)]) == 0
    (empty / "stale.txt").write_text("from the old run\n")
    assert main([*argv, str(empty)]) == 0  # now a run folder: replaced as a whole
    assert (empty / "DONE").exists() and not (empty / "stale.txt").exists()
    capsys.readouterr()


def test_a_failing_landscape_leaves_no_folder(root, tmp_path, capsys, monkeypatch):
    """A landscape that fails after its --out was made removes it (nothing half-written)."""
    import weightscape.maxent as maxent
    from weightscape.errors import NumericalError

    def fail(*args, **kwargs):
        raise NumericalError("BP diverged (planted for this test)")

    monkeypatch.setattr(maxent, "entropy_landscapes", fail)
    out = tmp_path / "land"
    argv = ["maxent", "landscape", str(root / "model.npz"), "--references", str(root / "refs.txt")]
    assert main([*argv, "--out", str(out)]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        "error: BP diverged (planted for this test)"
    ]
    assert not out.exists()


def test_the_installed_entry_point_behaves_the_same(tmp_path):
    """The script path (``python -m weightscape.cli``, what ``weightscape`` runs): exit 2, one
    line on stderr, no traceback, nothing written (a bad value refused by an option's own check
    while the command line is parsed)."""
    import subprocess
    import sys

    out = tmp_path / "o"
    cmd = [
        sys.executable,
        "-m",
        "weightscape.cli",
        "maxent",
        "train",
        "--lr",
        "0",
        "--out",
        str(out),
    ]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert res.returncode == 2, res.stderr
    assert res.stderr.strip().splitlines() == ["error: --lr=0.0 must be > 0"]
    assert not out.exists() and not any(tmp_path.iterdir())


@pytest.mark.skipif(
    __import__("torch").cuda.is_available(), reason="checks the refusal on a machine without CUDA"
)
def test_cuda_requested_without_cuda(root, capsys):
    out = root / "cuda-out"
    assert main(["train", "--data", "random", "--device", "cuda", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["error: --device='cuda' requested but CUDA is not available; use 'cpu'"]
    assert not out.exists()


@pytest.mark.skipif(
    __import__("torch").cuda.is_available(), reason="checks the refusal on a machine without CUDA"
)
def test_hessian_cuda_requested_without_cuda(root, capsys):
    before = _snapshot(root)
    assert main(["hessian", str(root / "run"), "--device", "cuda"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["error: --device='cuda' requested but CUDA is not available; use 'cpu'"]
    assert _snapshot(root) == before  # no hessian.npz / hessian.json
