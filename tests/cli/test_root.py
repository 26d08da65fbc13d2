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
        assert force.help == "Overwrite an existing --out.", path
        assert out.opts == ["--out"] and out.required, path
        if path in run_dir:
            assert out.help == "Run directory to create.", path
    assert _command(["maxent", "landscape"])["out"].help == "Output directory to create."
    for argv in (["train"], ["maxent", "relabel", "x.npz"]):
        assert main(argv) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert err == ["error: Missing option '--out'."], argv
