"""verify commands check their output paths before any work (verify/commands/_output.py)."""

from __future__ import annotations

import errno
import os

import pytest

from verify import cli
from verify.commands import _output
from verify.commands._output import file_problem, folder_problem

running_as_root = os.geteuid() == 0 if hasattr(os, "geteuid") else False


def test_writable_paths_have_no_problem(tmp_path):
    assert file_problem(tmp_path / "new.json") is None
    (tmp_path / "old.json").write_text("keep")
    assert file_problem(tmp_path / "old.json") is None
    assert (tmp_path / "old.json").read_text() == "keep", "the check does not truncate an existing file"
    assert folder_problem(tmp_path / "a" / "b" / "c") is None
    assert not (tmp_path / "a").exists(), "the check creates no folder"
    assert [p.name for p in tmp_path.iterdir()] == ["old.json"], "no probe file is left behind"


def test_unwritable_paths_say_why(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert "is not a folder" in folder_problem(blocker / "sub")
    assert "exists and is not a folder" in folder_problem(blocker)
    assert "does not exist" in file_problem(tmp_path / "missing" / "x.json")
    assert "is a folder" in file_problem(tmp_path)


@pytest.mark.skipif(running_as_root, reason="root writes into read-only-mode folders")
def test_read_only_folder(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        assert "cannot write in" in folder_problem(ro / "rates")
        assert "cannot write in" in file_problem(ro / "out.json")
    finally:
        ro.chmod(0o755)


def _read_only_file_system(monkeypatch):
    def refuse(*args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(_output.tempfile, "mkstemp", refuse)


def test_rates_refuses_before_computing(tmp_path, monkeypatch, capsys):
    from verify.rates import sweep

    def must_not_run(*args, **kwargs):
        raise AssertionError("computed before checking --out")

    monkeypatch.setattr(sweep, "run_cells", must_not_run)
    _read_only_file_system(monkeypatch)
    assert cli.main(["rates", "--quick", "--algo", "sgd", "--out", str(tmp_path / "rates"), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"verify rates: --out {tmp_path / 'rates'}: cannot write in {tmp_path} (Read-only file system)"]


@pytest.mark.parametrize("argv", [
    ["oracle", "--reference", "adam", "--candidate", "torch.optim:AdamW", "--steps", "2", "--json"],
    ["check", "--group", "nonexistent-group", "--json"],
    ["claims", "--paper", "no-such-paper", "--json"],
    ["bench", "--json"],
])
def test_json_outputs_are_checked_first(tmp_path, monkeypatch, capsys, argv):
    _read_only_file_system(monkeypatch)
    target = tmp_path / "out.json"
    assert cli.main(argv + [str(target)]) == 2
    captured = capsys.readouterr()
    assert captured.out == "", "nothing was computed or printed before the check"
    assert captured.err.strip() == f"verify {argv[0]}: --json {target}: cannot write in {tmp_path} (Read-only file system)"


@pytest.mark.parametrize("argv,option", [
    (["memory", "--write"], "--write"),
    (["memory", "--transients"], "--transients"),
    (["rank", "--write"], "--write"),
    (["figures", "--out"], "--out"),
])
def test_folder_outputs_are_checked_first(tmp_path, monkeypatch, capsys, argv, option):
    _read_only_file_system(monkeypatch)
    target = tmp_path / "out"
    assert cli.main(argv + [str(target)]) == 2
    assert capsys.readouterr().err.strip() == f"verify {argv[0]}: {option} {target}: cannot write in {tmp_path} (Read-only file system)"

