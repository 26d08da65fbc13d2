from weightscape.cli import main


def test_version(capsys):
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == "0.1.0"


def test_unknown_option_is_one_line_exit_2(capsys):
    assert main(["--bogus"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--bogus" in err[0]


def _command(path):
    import typer

    from weightscape.cli import app

    cmd = typer.main.get_command(app)
    for name in path:
        cmd = cmd.commands[name]
    return {p.name: p for p in cmd.params}


def test_shared_out_and_force_options_are_the_same_in_every_command(capsys):
    # --out/--force are declared once (cli/_options.py): each command that takes them offers
    # the same flag, help text, default and requiredness as when they were written out per
    # command, and a missing --out is a one-line exit-2 error naming it
    maxent = ("train", "sample", "fit", "validate", "relabel", "frozen-centre")
    run_dir = [["train"]] + [["maxent", c] for c in maxent]
    for path in [*run_dir, ["maxent", "landscape"]]:
        p = _command(path)
        force, out = p["force"], p["out"]
        assert force.opts == ["--force"] and force.is_flag and force.default is False, path
        assert force.help == "Replace an existing --out (a run folder or an empty folder).", path
        assert out.opts == ["--out"] and out.required, path
        if path in run_dir:
            assert out.help == "Run directory to create.", path
    assert _command(["maxent", "landscape"])["out"].help == "Output directory to create."
    for argv in (["train"], ["maxent", "relabel", "x.npz"]):
        assert main(argv) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert err == ["error: Missing option '--out'."], argv


def test_lrnet_options_are_the_same_in_maxent_train_and_frozen_centre(capsys, tmp_path):
    # --data/--P/--test-size/--batch-size/--lr are declared once (cli/_options.py): both LR-net
    # commands offer the same flag, help text, default and type, show the same help, and refuse
    # a bad value with the same one-line message
    train, frozen = _command(["maxent", "train"]), _command(["maxent", "frozen-centre"])
    for name in ("data", "P", "test_size", "batch_size", "lr"):
        a, b = train[name], frozen[name]
        assert a.opts == b.opts and a.help == b.help and a.default == b.default, name
        assert a.help, name
    helps = []
    for cmd in ("train", "frozen-centre"):
        assert main(["maxent", cmd, "--help"]) == 0
        out = capsys.readouterr().out
        helps.append(" ".join(out.replace("│", " ").split()))  # rich's box, wrapped lines joined
    for text in (
        "--data <str> mnist, fashion-mnist or mnist-sample. [default: mnist-sample]",
        "--P <int> Training points (default all; the paper's op: 500).",
        "--test-size <int> Test points (default: the given test set, else 1000 held out).",
        "--batch-size <int> Examples per Adam step. [default: 200]",
        "--lr <float> Adam learning rate. [default: 0.3]",
    ):
        assert all(text in h for h in helps), text
    for cmd in ("train", "frozen-centre"):
        for flag, value in (("--batch-size", "0"), ("--lr", "-1")):
            assert main(["maxent", cmd, flag, value, "--out", str(tmp_path / "o")]) == 2
            err = capsys.readouterr().err.strip().splitlines()
            assert err == [f"error: {flag}={float(value) if flag == '--lr' else 0!r} must be > 0"]
            assert not (tmp_path / "o").exists()
