"""``verify rates`` and ``verify figures`` end to end on a tiny grid (the real grids are run by the CLI, not tests)."""

import json

import pytest

from verify import cli
from verify.rates import cells as grid_module
from verify.rates.spec import Cell, Check

P1 = ("separable", {"d": 4})


def tiny_grid(grid="quick", master_seed=0):
    common = dict(problem=P1, noise=("isotropic", {"level": 0.5}), horizons=(16, 32, 64, 128), seeds=6,
                  master_seed=master_seed, figure="tiny")
    cells = [
        Cell(key="tiny/sgd", algorithm="sgd", hyper={}, schedule={"kind": "inverse_sqrt_horizon", "eta0": 2.0}, **common),
        Cell(key="tiny/gd", algorithm="sgd", hyper={}, schedule={"kind": "one_over_L"},
             **{**common, "noise": ("none", {}), "seeds": 2}),
    ]
    checks = [
        Check(key="tiny/sgd-bound", algorithm="sgd", theorem="sgd_horizon", kind="bound", cells=("tiny/sgd",),
              claim="under the explicit bound", figure="tiny"),
        Check(key="tiny/gd-slope", algorithm="sgd", theorem="gd_descent", kind="slope", cells=("tiny/gd",),
              low=-1.1, high=-0.9, figure="tiny"),
        Check(key="tiny/impossible", algorithm="adam", theorem="gd_descent", kind="slope", cells=("tiny/gd",),
              low=0.5, high=0.6),
    ]
    return cells, checks


@pytest.fixture
def tiny(monkeypatch):
    monkeypatch.setattr(grid_module, "build", tiny_grid)


def test_list_needs_no_run(capsys):
    assert cli.main(["rates", "--quick", "--list"]) == 0
    out = capsys.readouterr().out
    assert "adagrad_norm/p1" in out and "mars_adamw/gap-vs-adamw" in out


def test_unknown_algorithm_is_a_clear_error(capsys):
    assert cli.main(["rates", "--quick", "--algo", "nope", "--list"]) == 2
    assert "no checks" in capsys.readouterr().err


def test_run_cache_verdicts_and_figures(tiny, tmp_path, capsys):
    out_root = tmp_path / "results" / "rates"
    args = ["rates", "--quick", "--out", str(out_root), "--jobs", "1", "--no-progress", "--resamples", "200"]
    assert cli.main(args + ["--algo", "sgd"]) == 0  # the asserted impossible check belongs to "adam"
    first = capsys.readouterr().out
    assert "2 cell(s) run" in first and "tiny/sgd-bound" in first and "PASS" in first
    assert cli.main(args) == 1  # now with the impossible asserted check: FAIL -> exit status 1
    second = capsys.readouterr().out
    assert "0 cell(s) run, 2 cached" in second and "FAIL" in second
    verdicts = json.loads((out_root / "quick" / "verdicts.json").read_text())
    by_key = {r["key"]: r for r in verdicts["results"]}
    assert by_key["tiny/gd-slope"]["verdict"] == "PASS"
    assert by_key["tiny/impossible"]["verdict"] == "FAIL"
    assert verdicts["summary"]["asserted"]["FAIL"] == 1
    assert (out_root / "quick" / "verdicts.md").read_text().count("| sgd |") == 2
    assert (out_root / "quick" / "theorems.json").exists()
    assert cli.main(["figures", "--root", str(tmp_path), "--only", "rates"]) == 0
    png = out_root / "quick" / "figures" / "tiny.png"
    assert png.exists() and png.stat().st_size > 1000


def test_figures_list_and_unknown(capsys):
    assert cli.main(["figures", "--list"]) == 0
    assert "rates" in capsys.readouterr().out
    assert cli.main(["figures", "--only", "nope"]) == 2


def test_figures_skip_missing_results(tmp_path, capsys):
    assert cli.main(["figures", "--root", str(tmp_path), "--only", "rates"]) == 0
    assert "skip" in capsys.readouterr().out
